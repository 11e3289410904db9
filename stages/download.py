"""download: FER2013 from data.source → data/fer2013.npz (verified canonical arrays)."""
import sys
import time

from fer3d import data, params, sources
from fer3d.io import save_json, save_npz


def main() -> None:
    p = params.load()
    root = params.repo_root()
    source = params.get(p, "data.source", str)
    limit = params.positive(p, "data.limit", int, allow_zero=True)
    shared_dir = (root / params.get(p, "data.shared_dir", str)).resolve()
    start = time.perf_counter()
    path = sources.fetch(source, sha256=params.get(p, "data.sha256", str),
                         search_dirs=[root / "data" / "raw", shared_dir], download_dir=root / "data" / "raw")
    print(f"download: reading {path}")
    fer = data.read_source(path)
    data.verify(fer, name=str(path))
    full_counts = fer.counts()
    fer = data.stratified_subset(fer, limit, seed=params.get(p, "seed", int))
    save_npz(root / "data" / "fer2013.npz", **fer.arrays())
    save_json(root / "metrics" / "data.json", {
        "source": shown_path(path, root), "rows": len(fer), "limit": limit, "verified_rows": sum(map(sum, full_counts.values())),
        "counts": fer.counts(), "seconds": round(time.perf_counter() - start, 2),
    })
    print(f"download: {len(fer):,} rows ({'all' if not limit else f'~{limit} per split'}) → data/fer2013.npz")


def shown_path(path, root) -> str:
    """The source as recorded in git: relative to the project where it can be, so the metrics
    file does not carry this machine's absolute paths (../shared/data/…, data/raw/…)."""
    import os

    try:
        return os.path.relpath(path, root)
    except ValueError:  # another drive on Windows
        return str(path)


if __name__ == "__main__":
    try:
        main()
    except (data.DataError, params.ParamError) as e:
        sys.exit(f"download: {e}")
