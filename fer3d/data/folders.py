"""Labelled face folders: `<class>/*` or `<split>/<class>/*`, any image format and size.

Class folder names map onto the canonical emotions through a synonym table (the names and
two-letter codes of FER2013, FER+, RAF-DB, AffectNet, CK+ and JAFFE); an unknown name is refused
with the list of known ones, so a typo never becomes a silent new class. A folder may hold
sub-folders (one per subject, say); every image below a class folder has that class."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import EMOTIONS

# FER2013's 7 classes, then FER+'s eighth; the order of every class list built from a folder
CANONICAL_CLASSES = (*EMOTIONS, "contempt")
_SYNONYMS = {
    "angry": ("angry", "anger", "an", "ang", "mad"),
    "disgust": ("disgust", "disgusted", "di", "dis"),
    "fear": ("fear", "fearful", "afraid", "scared", "fe"),
    "happy": ("happy", "happiness", "joy", "ha", "hap"),
    "sad": ("sad", "sadness", "sa"),
    "surprise": ("surprise", "surprised", "su", "sur"),
    "neutral": ("neutral", "calm", "ne", "neu"),
    "contempt": ("contempt", "co", "con"),
}
SYNONYMS = {alias: name for name, aliases in _SYNONYMS.items() for alias in aliases}
SPLIT_SYNONYMS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "publictest": "val",
    "test": "test",
    "testing": "test",
    "privatetest": "test",
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".gif")


class FolderError(ValueError):
    """A labelled folder that cannot be used as it is; the message names the path."""


def canonical_class(name: str, where: Path) -> str:
    """'Happiness', 'HA', 'happy' → 'happy'; FolderError naming `where` for an unknown name.
    Leading digits and separators are ignored ('3_happy', '03-HA')."""
    key = re.sub(r"^[\d_\-. ]+", "", name).strip().lower()
    if key not in SYNONYMS:
        known = ", ".join(f"{c} ({'/'.join(a for a in _SYNONYMS[c] if a != c)})" for c in CANONICAL_CLASSES)
        raise FolderError(f"{where}: unknown class folder name {name!r}; known names: {known}")
    return SYNONYMS[key]


@dataclass
class LabelledFolder:
    root: Path
    files: list[Path]
    labels: list[str]  # canonical class names
    splits: list[str] | None  # "train" / "val" / "test" per file in the split layout, else None

    @property
    def classes(self) -> list[str]:
        present = set(self.labels)
        return [c for c in CANONICAL_CLASSES if c in present]

    def counts(self) -> dict[str, int]:
        counted = Counter(self.labels)
        return {c: counted[c] for c in self.classes}

    def subset(self, keep: np.ndarray) -> LabelledFolder:
        idx = np.flatnonzero(keep)
        splits = None if self.splits is None else [self.splits[i] for i in idx]
        return LabelledFolder(self.root, [self.files[i] for i in idx], [self.labels[i] for i in idx], splits)

    def only_split(self, split: str) -> LabelledFolder:
        """The files of one split, named as the folders may name it ('testing', 'validation', ...)."""
        split = SPLIT_SYNONYMS.get(split.lower(), split)
        if self.splits is None:
            raise FolderError(f"{self.root}: has no <split>/ folders; cannot take its {split!r} split")
        if split not in self.splits:
            raise FolderError(f"{self.root}: has no {split!r} split (found {sorted(set(self.splits))})")
        return self.subset(np.array([s == split for s in self.splits]))

    def groups(self, pattern: str | None) -> np.ndarray:
        """Group id per file: the regex's first group (or whole match) on the path relative to the
        root, e.g. r"S\\d+" for CK+ subjects; each image its own group without a pattern."""
        if pattern is None:
            return np.arange(len(self.files))
        try:
            regex = re.compile(pattern)
        except re.error as e:
            raise FolderError(f"--group {pattern!r} is not a regular expression: {e}") from None
        names, missing = [], []
        for f in self.files:
            rel = f.relative_to(self.root).as_posix()
            m = regex.search(rel)
            if m is None or (regex.groups and m.group(1) is None):  # 'x(S\\d+)|_' can match without its group
                missing.append(rel)
            else:
                names.append(m.group(1) if regex.groups else m.group(0))
        if missing:
            raise FolderError(
                f"{self.root}: the group pattern '{pattern}' does not match {len(missing)} of the "
                f"{len(self.files)} file paths (below the folder), e.g. {missing[:3]}; every file needs a group"
            )
        return np.unique(np.array(names), return_inverse=True)[1]


def _images_below(folder: Path) -> list[Path]:
    """Image files below `folder`, hidden ones left out (macOS's ._ AppleDouble copies, .folders)."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_SUFFIXES
        and not any(_hidden(part) for part in p.relative_to(folder).parts)
    )


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _class_folders(folder: Path) -> tuple[list[Path], list[str]]:
    files, labels = [], []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not _hidden(p.name)):
        label = canonical_class(sub.name, sub)
        found = _images_below(sub)
        files += found
        labels += [label] * len(found)
    return files, labels


def scan(root: str | Path) -> LabelledFolder:
    """The images and labels of a `<class>/*` or `<split>/<class>/*` folder; FolderError naming
    the path for a folder that is missing, empty, mixes the layouts, has a split without images,
    or holds fewer than two classes."""
    root = Path(root)
    if not root.is_dir():
        raise FolderError(f"{root}: not a folder (expected <class>/* or <split>/<class>/* image folders)")
    subs = sorted(p for p in root.iterdir() if p.is_dir() and not _hidden(p.name))
    split_named = [p for p in subs if p.name.lower() in SPLIT_SYNONYMS]
    if split_named and len(split_named) != len(subs):
        others = [p.name for p in subs if p not in split_named]
        raise FolderError(f"{root}: mixes split folders {[p.name for p in split_named]} with others {others}")
    files, labels, splits = [], [], None
    if split_named:
        splits = []
        for sub in split_named:
            f, lab = _class_folders(sub)
            if not f:
                raise FolderError(f"{sub}: split {sub.name!r} has no images in <class>/ folders")
            files, labels, splits = files + f, labels + lab, splits + [SPLIT_SYNONYMS[sub.name.lower()]] * len(f)
    else:
        files, labels = _class_folders(root)
    if not files:
        loose = _images_below(root)
        hint = f" ({len(loose)} image(s) lie outside class folders)" if loose else ""
        raise FolderError(f"{root}: no images in <class>/ folders{hint}; formats: {', '.join(IMAGE_SUFFIXES)}")
    if len(set(labels)) < 2:
        raise FolderError(f"{root}: only one class ({labels[0]}) — a labelled set needs at least two")
    return LabelledFolder(root, files, labels, splits)


# ------------------------------------------------------------------ face crops of a folder


NO_FACE = "no face found"
SEVERAL = "several faces: kept the most confident"


@dataclass
class FolderFaces:
    crops: np.ndarray  # (M, 48, 48) uint8 of the kept images
    kept: np.ndarray  # bool (N,) over the folder's files
    dropped: dict[str, list[str]] = field(default_factory=dict)  # reason -> relative paths
    notes: dict[str, int] = field(default_factory=dict)  # e.g. several faces -> count


def folder_faces(folder: LabelledFolder, finder, crops: bool = False, align: bool = True) -> FolderFaces:
    """The 48x48 crop of every usable image of the folder, cut as `fer3d predict` cuts photos
    (finder: a fer3d.app.faces.FaceFinder, None with crops=True). 48x48 images (or all, with
    crops=True) are crops already; the others are searched for faces and framed like FER2013. An
    image without a face is dropped and counted; an image with several keeps its most confident
    face (a labelled image shows one person); an unreadable file is an error naming it."""
    from ..app.faces import InputError, as_crop, crop_face, is_crop, read_image

    out, kept, dropped, notes, unreadable = [], np.zeros(len(folder.files), bool), {}, {}, []
    for i, path in enumerate(folder.files):
        try:
            image = read_image(path)
        except InputError as e:
            unreadable.append(str(e))
            continue
        if crops or is_crop(image):
            out.append(as_crop(image))
            kept[i] = True
            continue
        detections = finder.find(image)
        if not detections:
            dropped.setdefault(NO_FACE, []).append(path.relative_to(folder.root).as_posix())
            continue
        if len(detections) > 1:
            notes[SEVERAL] = notes.get(SEVERAL, 0) + 1
        out.append(crop_face(image, max(detections, key=lambda d: d.score), align).crop)
        kept[i] = True
    if unreadable:
        raise FolderError(f"{len(unreadable)} unreadable file(s) in {folder.root}: " + "; ".join(unreadable[:5]))
    if not out:
        raise FolderError(f"{folder.root}: no face found in any of its {len(folder.files)} image(s)")
    return FolderFaces(np.stack(out), kept, dropped, notes)


# ------------------------------------------------------------------ a folder as the training source

FOLDER_SOURCE = "folder:"
# class layout: held-out fractions (PublicTest and PrivateTest's share of FER2013: ~10% each)
HELD_OUT_FOLDS = 10


def assign_splits(folder: LabelledFolder, groups: np.ndarray, seed: int) -> np.ndarray:
    """uint8 split index (fer3d.config.SPLITS) per file. The split layout's own splits (a missing
    val split is carved from train); otherwise a seeded stratified split, 8/10 train, 1/10 val,
    1/10 test, group-aware (scikit-learn's StratifiedGroupKFold): one group never spans two splits."""
    from sklearn.model_selection import StratifiedGroupKFold

    from ..config import SPLITS, TEST, TRAIN, VAL

    labels = np.array([CANONICAL_CLASSES.index(c) for c in folder.labels])
    if folder.splits is not None:
        split = np.array([SPLITS.index(s) for s in folder.splits], np.uint8)
        for needed in ("train", "test"):
            if needed not in folder.splits:
                raise FolderError(f"{folder.root}: has split folders but no {needed!r} one")
        untrained = sorted(
            {folder.labels[i] for i in np.flatnonzero(split != TRAIN)} - set(np.array(folder.labels)[split == TRAIN])
        )
        if untrained:
            raise FolderError(f"{folder.root}: no train/ images of {untrained}, which the other splits hold")
        _check_groups_within_splits(folder, groups, split)
        if "val" in folder.splits:
            return split
        pool, folds = np.flatnonzero(split == TRAIN), HELD_OUT_FOLDS - 1
        chosen = {1: VAL}
    else:
        split = np.full(len(labels), TRAIN, np.uint8)
        pool, folds = np.arange(len(labels)), HELD_OUT_FOLDS
        chosen = {0: TEST, 1: VAL}
    n_groups = len(np.unique(groups[pool]))
    if n_groups < folds:
        raise FolderError(
            f"{folder.root}: {n_groups} group(s) cannot be split {folds} ways (data.group puts whole groups "
            "on one side); give <split>/<class>/ folders or a finer group pattern"
        )
    counts = {c: int((labels[pool] == CANONICAL_CLASSES.index(c)).sum()) for c in folder.classes}
    few = {c: n for c, n in counts.items() if n < folds}
    if few:
        where = "train/ images" if folder.splits is not None else "images"
        advice = "add a val/ folder" if folder.splits is not None else "give <split>/<class>/ folders instead"
        raise FolderError(
            f"{folder.root}: fewer than {folds} {where} to split a val split from in {few} (each class's "
            f"count: {counts}); {advice}"
        )
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (_, held) in enumerate(splitter.split(pool, labels[pool], groups[pool])):
        if k in chosen:
            split[pool[held]] = chosen[k]
    return split


def _check_groups_within_splits(folder: LabelledFolder, groups: np.ndarray, split: np.ndarray) -> None:
    """With split folders, data.group cannot choose the splits; it must not find one group (a
    subject) in two of them, or the test faces' people were trained on."""
    from ..config import SPLITS

    order = np.argsort(groups, kind="stable")
    sorted_groups, sorted_split = groups[order], split[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    spans = np.minimum.reduceat(sorted_split, starts) != np.maximum.reduceat(sorted_split, starts)
    if spans.any():
        first = int(np.flatnonzero(spans)[0])
        members = order[starts[first] : (starts[first + 1] if first + 1 < len(starts) else len(order))]
        example = folder.files[int(members[0])].relative_to(folder.root).as_posix()
        raise FolderError(
            f"{folder.root}: the group of {example} (data.group) has images in "
            f"{[SPLITS[i] for i in np.unique(split[members])]}; one subject must stay in one split folder"
        )
