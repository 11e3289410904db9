"""download: FER2013 from data.source → data/fer2013.npz (verified canonical arrays); or, with
data.source folder:PATH, a labelled face folder's crops, labels and splits in the same arrays (plus its
class names), so every later stage runs on it unchanged."""

import sys
import time

import numpy as np

from fer3d import params
from fer3d.config import SPLITS, Paths, outside_path
from fer3d.data import fer2013 as data
from fer3d.data import ferplus, folders, sources
from fer3d.io import save_json, save_npz


def main() -> None:
    p = params.load()
    paths = Paths()
    root = paths.root
    source = params.get(p, "data.source", str)
    limit = params.positive(p, "data.limit", int, allow_zero=True)
    shared_dir = outside_path(params.get(p, "data.shared_dir", str))
    group, crops = params.get(p, "data.group", str) or None, params.get(p, "data.crops", bool)
    start = time.perf_counter()
    if source.startswith(folders.FOLDER_SOURCE):
        path = outside_path(source.removeprefix(folders.FOLDER_SOURCE))
        print(f"download: reading the labelled folder {path}")
        fer, extra = read_folder_source(path, group, crops, seed=params.get(p, "seed", int))
    else:
        path = sources.fetch(
            source,
            sha256=params.get(p, "data.sha256", str),
            search_dirs=[paths.raw, shared_dir],
            download_dir=paths.raw,
        )
        print(f"download: reading {path}")
        fer = data.read_source(path)
        data.verify(fer, name=str(path))
        extra = {"verified_rows": len(fer)}
    fer = data.stratified_subset(fer, limit, seed=params.get(p, "seed", int))
    classes = extra.pop("classes", None)
    save_npz(paths.fer2013, **fer.arrays(), **({"classes": np.array(classes)} if classes else {}))
    votes_from = save_ferplus(paths, fer, [paths.raw, shared_dir, path.parent])
    save_json(
        paths.stage_metrics("data"),
        {
            "source": shown_path(path, root),
            "rows": len(fer),
            "limit": limit,
            **extra,
            **({"classes": classes} if classes else {}),
            "counts": fer.counts(),
            "ferplus_source": shown_path(votes_from, root) if votes_from else None,
            "seconds": round(time.perf_counter() - start, 2),
        },
    )
    print(f"download: {len(fer):,} rows ({'all' if not limit else f'~{limit} per split'}) → data/fer2013.npz")


def read_folder_source(path, group: str | None, crops: bool, seed: int) -> tuple[data.Fer2013, dict]:
    """A labelled face folder (fer3d.data.folders) as FER2013-like arrays: 48x48 crops (faces found
    and framed like FER2013 unless `crops`), labels indexing the folder's own classes, splits."""
    from fer3d.app.faces import face_finder

    folder = folders.scan(path)
    split = folders.assign_splits(folder, folder.groups(group), seed)  # before dropping: stable
    with face_finder(crops) as finder:
        faces = folders.folder_faces(folder, finder, crops)
    kept = folder.subset(faces.kept)
    classes = kept.classes
    split = split[faces.kept]
    for s, name in enumerate(SPLITS):
        if not (split == s).any():
            raise data.DataError(f"{path}: no usable image left in the {name} split (faces dropped: {faces.dropped})")
    label = np.array([classes.index(c) for c in kept.labels], np.int8)
    fer = data.Fer2013(faces.crops, label, split, np.full(len(label), -1, np.int32))
    dropped = {reason: {"count": len(f), "examples": f[:5]} for reason, f in faces.dropped.items()}
    for reason, d in dropped.items():
        print(f"download: dropped {d['count']} image(s): {reason} (e.g. {', '.join(d['examples'][:3])})")
    return fer, {"images": len(folder.files), "dropped": dropped, "notes": faces.notes, "classes": classes}


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
        print(
            f"download: WARNING: FER+ votes not available ({why}); FER+ scores will be empty. DVC does not "
            "watch for that file: after adding it, `dvc repro -f download` reads it",
            file=sys.stderr,
        )
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
    except (data.DataError, params.ParamError, folders.FolderError) as e:
        sys.exit(f"download: {e}")
