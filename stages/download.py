"""download: FER2013 from data.source → data/fer2013.npz (verified canonical arrays)."""

import sys
import time

import numpy as np

from fer3d import params
from fer3d.config import Paths, outside_path
from fer3d.data import fer2013 as data
from fer3d.data import ferplus, sources
from fer3d.io import save_json, save_npz


def main() -> None:
    p = params.load()
    paths = Paths()
    root = paths.root
    source = params.get(p, "data.source", str)
    limit = params.positive(p, "data.limit", int, allow_zero=True)
    shared_dir = outside_path(params.get(p, "data.shared_dir", str))
    start = time.perf_counter()
    path = sources.fetch(
        source, sha256=params.get(p, "data.sha256", str), search_dirs=[paths.raw, shared_dir], download_dir=paths.raw
    )
    print(f"download: reading {path}")
    fer = data.read_source(path)
    data.verify(fer, name=str(path))
    full_counts = fer.counts()
    fer = data.stratified_subset(fer, limit, seed=params.get(p, "seed", int))
    save_npz(paths.fer2013, **fer.arrays())
    votes_from = save_ferplus(paths, fer, [paths.raw, shared_dir, path.parent])
    save_json(
        paths.stage_metrics("data"),
        {
            "source": shown_path(path, root),
            "rows": len(fer),
            "limit": limit,
            "verified_rows": sum(map(sum, full_counts.values())),
            "counts": fer.counts(),
            "ferplus_source": shown_path(votes_from, root) if votes_from else None,
            "seconds": round(time.perf_counter() - start, 2),
        },
    )
    print(f"download: {len(fer):,} rows ({'all' if not limit else f'~{limit} per split'}) → data/fer2013.npz")


def save_ferplus(paths: Paths, fer: data.Fer2013, search_dirs: list) -> object:
    """data/ferplus.npz: the FER+ votes of the kept rows, or an empty table and a loud warning when
    fer2013new.csv is nowhere to be found (the FER+ column of the evaluation is then empty)."""
    found = ferplus.find(search_dirs)
    if found is None or (fer.row < 0).any():
        why = (
            "no fer2013new.csv in " + ", ".join(map(str, search_dirs))
            if found is None
            else "the source has no row numbers"
        )
        print(f"download: WARNING: FER+ votes not available ({why}); FER+ scores will be empty", file=sys.stderr)
        save_npz(paths.ferplus, votes=np.zeros((0, len(ferplus.COLUMNS)), np.uint8), available=np.bool_(False))
        return None
    save_npz(paths.ferplus, votes=ferplus.read_votes(found)[fer.row], available=np.bool_(True))
    return found


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
