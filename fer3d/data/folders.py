"""Labelled face folders: `<class>/*` or `<split>/<class>/*`, any image format and size.

Class folder names map onto the canonical emotions through a synonym table (the names and
two-letter codes of FER2013, FER+, RAF-DB, AffectNet, CK+ and JAFFE); an unknown name is refused
with the list of known ones, so a typo never becomes a silent new class. A folder may hold
sub-folders (one per subject, say); every image below a class folder has that class."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
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
            if m is None:
                missing.append(rel)
            else:
                names.append(m.group(1) if regex.groups else m.group(0))
        if missing:
            raise FolderError(
                f"{self.root}: the group pattern {pattern!r} matches none of {len(missing)} file path(s), "
                f"e.g. {missing[:3]}"
            )
        return np.unique(np.array(names), return_inverse=True)[1]


def _images_below(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _class_folders(folder: Path) -> tuple[list[Path], list[str]]:
    files, labels = [], []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
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
    subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
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
