"""FER2013 as canonical arrays: read any of its published layouts, verify it, subset it.

Canonical form (what `download` writes to data/fer2013.npz):
  images uint8 (N,48,48), label int8 (N,), split uint8 (N,) indexing fer3d.SPLITS
  (train/val/test = Training/PublicTest/PrivateTest), row int32 (N,) = line number in the
  original fer2013.csv (-1 where the source layout does not carry it, e.g. msambare's jpg folders).
"""

from __future__ import annotations

import gzip
import io
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import CROP_SIDE, EMOTIONS, SPLITS, USAGE_TO_SPLIT

PIXELS = CROP_SIDE * CROP_SIDE
TOTAL_ROWS = 35_887
# Rows per split and class of the verified file (../shared/data/README.md); a source that
# disagrees is not FER2013 (or is truncated), and nothing downstream may run on it.
EXPECTED_COUNTS = {
    "train": (3995, 436, 4097, 7215, 4830, 3171, 4965),
    "val": (467, 56, 496, 895, 653, 415, 607),
    "test": (491, 55, 528, 879, 594, 416, 626),
}
CSV_HEADER = b"emotion,pixels,Usage"


class DataError(ValueError):
    """The source is not a complete, valid FER2013; the message says what was expected and found."""


@dataclass
class Fer2013:
    images: np.ndarray  # uint8 (N,48,48)
    label: np.ndarray  # int8 (N,)
    split: np.ndarray  # uint8 (N,), index into SPLITS
    row: np.ndarray  # int32 (N,)

    def __len__(self) -> int:
        return len(self.label)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"images": self.images, "label": self.label, "split": self.split, "row": self.row}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Fer2013:
        return cls(arrays["images"], arrays["label"], arrays["split"], arrays["row"])

    def take(self, index: np.ndarray) -> Fer2013:
        return Fer2013(self.images[index], self.label[index], self.split[index], self.row[index])

    def counts(self) -> dict[str, list[int]]:
        """Rows per split and class, as lists ordered like fer3d.EMOTIONS."""
        return {
            name: np.bincount(self.label[self.split == s], minlength=len(EMOTIONS)).tolist()
            for s, name in enumerate(SPLITS)
        }


# ---------------------------------------------------------------- readers


def read_source(path: str | Path) -> Fer2013:
    """Read a local fer2013.csv, .csv.gz, msambare-style .zip or folder (train/<emotion>/*.jpg)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder (expected fer2013.csv, .csv.gz, a .zip or a folder)")
    if path.is_dir():
        return read_folder(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as f:
                return parse_csv(f.read(), name=str(path))
        except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; a flipped byte: zlib.error
            raise DataError(f"{path}: not a readable gzip file ({type(e).__name__}: {e})") from e
    if magic == b"PK\x03\x04" or path.suffix.lower() == ".zip":
        return read_zip(path)
    return parse_csv(path.read_bytes(), name=str(path))


def parse_csv(raw: bytes, name: str = "fer2013.csv") -> Fer2013:
    """Parse the Kaggle/ICML csv (`emotion,pixels,Usage`), checking every row."""
    raw = raw.replace(b"\r\n", b"\n")
    lines = raw.split(b"\n")
    while lines and not lines[-1].strip():  # blank lines at the end (an editor's, a concatenation's)
        lines.pop()
    if not lines or lines[0].strip() != CSV_HEADER:
        found = repr(lines[0][:60].decode(errors="replace")) if lines and lines[0] else "an empty first line"
        found = found if raw else "an empty file"
        raise DataError(f"{name}: expected the header {CSV_HEADER.decode()!r}, found {found}")
    n = len(lines) - 1
    labels = np.empty(n, np.int8)
    splits = np.empty(n, np.uint8)
    pixel_fields = []
    for i, line in enumerate(lines[1:]):
        fields = line.split(b",")
        if len(fields) != 3:
            raise DataError(
                f"{name}: data row {i} (line {i + 2}) has {len(fields)} fields, expected 3 "
                "(emotion,pixels,Usage); the file may be truncated"
            )
        emotion, pixels, usage = fields
        if emotion.strip() not in _LABEL_TOKENS:
            raise DataError(
                f"{name}: data row {i} has emotion {emotion.decode(errors='replace')!r}, "
                f"expected an integer 0..{len(EMOTIONS) - 1}"
            )
        labels[i] = int(emotion)
        split = USAGE_TO_SPLIT.get(usage.strip().decode(errors="replace"))
        if split is None:
            raise DataError(
                f"{name}: data row {i} has Usage {usage.decode(errors='replace')!r}, "
                f"expected one of {sorted(USAGE_TO_SPLIT)}"
            )
        splits[i] = SPLITS.index(split)
        count = pixels.count(b" ") + 1
        if count != PIXELS:
            raise DataError(f"{name}: data row {i} has {count} pixel values, expected {PIXELS} (48x48)")
        pixel_fields.append(pixels)
    joined = b" ".join(pixel_fields)
    values = np.fromstring(joined, dtype=np.int32, sep=" ") if n else np.empty(0, np.int32)
    if values.size != n * PIXELS:
        # fromstring stops at the first token that is not an integer, and reads two spaces as one
        raise DataError(f"{name}: {_bad_pixel_row(pixel_fields)}")
    if n and (values.min() < 0 or values.max() > 255):
        bad = int(np.flatnonzero((values < 0) | (values > 255))[0])
        raise _long_value(name, pixel_fields) or DataError(
            f"{name}: data row {bad // PIXELS} has pixel value {values[bad]}, expected 0..255"
        )
    images = values.astype(np.uint8)
    # A value of 10+ digits wraps around in int32 and may land in 0..255. Unless some token is longer
    # than its value's digits, the text's length is their count plus the spaces: counted, not scanned.
    digits = images.size + np.count_nonzero(images >= 10) + np.count_nonzero(images >= 100)
    if n and digits + images.size - 1 != len(joined) and (error := _long_value(name, pixel_fields)):
        raise error
    images = images.reshape(n, CROP_SIDE, CROP_SIDE)
    return Fer2013(images, labels, splits, np.arange(n, dtype=np.int32))


def _long_value(name: str, pixel_fields: list[bytes]) -> DataError | None:
    """The first value of 4+ digits (leading zeros aside), which int32 may have wrapped around."""
    for row, field in enumerate(pixel_fields):
        if match := _LONG_NUMBER.search(field):
            return DataError(f"{name}: data row {row} has pixel value {match.group().decode()}, expected 0..255")
    return None


def _bad_pixel_row(pixel_fields: list[bytes]) -> str:
    """Which row's pixels do not parse, and why (only called once the whole parse has failed)."""
    for i, pixels in enumerate(pixel_fields):
        tokens = pixels.split(b" ")
        if b"" in tokens:
            return f"data row {i} has an empty pixel value (two spaces in a row, or one at an end)"
        bad = next((t for t in tokens if not t.strip().lstrip(b"-").isdigit()), None)
        if bad is not None:
            return f"data row {i} holds a pixel value that is not an integer: {bad[:20].decode(errors='replace')!r}"
    return "a pixel value does not parse as an integer"


_LABEL_TOKENS = {str(i).encode() for i in range(len(EMOTIONS))}
_LONG_NUMBER = re.compile(rb"(?<![0-9])0*[1-9][0-9]{3,}")  # a value of 4+ digits, leading zeros aside
# msambare layout: test files are named PublicTest_<n>.jpg / PrivateTest_<n>.jpg
_FILE_SPLIT = re.compile(r"^(Training|PublicTest|PrivateTest)_")


def _is_image_entry(name: str) -> bool:
    """An image of the layout, not macOS's metadata: __MACOSX/ folders and ._ AppleDouble files."""
    parts = name.replace("\\", "/").split("/")
    return (
        name.lower().endswith((".jpg", ".jpeg", ".png")) and "__MACOSX" not in parts and not parts[-1].startswith("._")
    )


def read_folder(root: Path) -> Fer2013:
    files = sorted(p for p in root.rglob("*") if p.is_file() and _is_image_entry(str(p.relative_to(root))))
    return _from_image_files(((str(p.relative_to(root)), p.read_bytes) for p in files), str(root))


def read_zip(path: Path) -> Fer2013:
    """The msambare image zip, or a zip holding the csv (fer2013.csv, as Kaggle's older download)."""
    try:
        with zipfile.ZipFile(path) as z:
            members = sorted(m for m in z.namelist() if _is_image_entry(m))
            tables = [m for m in z.namelist() if m.lower().endswith(".csv") and "__MACOSX" not in m]
            if not members and len(tables) == 1:
                return parse_csv(z.read(tables[0]), name=f"{path}:{tables[0]}")
            return _from_image_files(((m, lambda m=m: z.read(m)) for m in members), str(path))
    except zipfile.BadZipFile as e:
        raise DataError(
            f"{path}: not a valid zip archive ({e}); expected the msambare/fer2013 zip "
            "with train/<emotion>/*.jpg and test/<emotion>/*.jpg"
        ) from e


def _from_image_files(entries, name: str) -> Fer2013:
    """entries: (relative path, bytes reader) for train/<emotion>/x.jpg and test/<emotion>/x.jpg."""
    from PIL import Image  # PIL comes with matplotlib; only image-folder sources need it

    images, labels, splits = [], [], []
    for rel, read in entries:
        parts = Path(rel).parts
        if len(parts) < 3 or parts[-3].lower() not in ("train", "test"):
            continue  # not in the train/<emotion>/ or test/<emotion>/ layout: readme files, thumbnails
        top, emotion, filename = parts[-3].lower(), parts[-2].lower(), parts[-1]
        if emotion not in EMOTIONS:
            raise DataError(f"{name}: {rel}: folder {emotion!r} is not an emotion; expected one of {list(EMOTIONS)}")
        if top == "train":
            split = "train"
        else:
            m = _FILE_SPLIT.match(filename)
            if not m or m.group(1) == "Training":
                raise DataError(
                    f"{name}: {rel}: test images must be named PublicTest_* or PrivateTest_* "
                    "to tell validation from test"
                )
            split = USAGE_TO_SPLIT[m.group(1)]
        try:
            img = Image.open(io.BytesIO(read())).convert("L")
        except Exception as e:  # PIL raises many types for broken files
            raise DataError(f"{name}: {rel}: not a readable image ({e})") from e
        if img.size != (CROP_SIDE, CROP_SIDE):
            raise DataError(f"{name}: {rel}: image is {img.size[0]}x{img.size[1]}, expected 48x48")
        images.append(np.asarray(img, np.uint8))
        labels.append(EMOTIONS.index(emotion))
        splits.append(SPLITS.index(split))
    if not images:
        raise DataError(f"{name}: no images found in the train/<emotion>/*.jpg, test/<emotion>/*.jpg layout")
    return Fer2013(
        np.stack(images), np.array(labels, np.int8), np.array(splits, np.uint8), np.full(len(images), -1, np.int32)
    )


# ---------------------------------------------------------------- checks and subsets


def verify(data: Fer2013, name: str = "FER2013") -> None:
    """Refuse anything but the complete FER2013: row count and every split × class count."""
    if len(data) != TOTAL_ROWS:
        raise DataError(f"{name}: found {len(data):,} rows, expected {TOTAL_ROWS:,} (a truncated or different file?)")
    found = data.counts()
    for split, expected in EXPECTED_COUNTS.items():
        if tuple(found[split]) != expected:
            diffs = ", ".join(
                f"{EMOTIONS[c]} {f} (expected {e})" for c, (f, e) in enumerate(zip(found[split], expected)) if f != e
            )
            raise DataError(f"{name}: split {split!r} has wrong class counts: {diffs}")


def stratified_subset(data: Fer2013, per_split: int, seed: int) -> Fer2013:
    """Keep about `per_split` rows of each split with its class proportions (at least one per
    class), chosen reproducibly by `seed`, in their original order."""
    if per_split <= 0:
        return data
    rng = np.random.default_rng(seed)
    keep = []
    for s in range(len(SPLITS)):
        in_split = data.split == s
        total = int(in_split.sum())
        for c in range(int(data.label.max()) + 1):  # a folder source may have other classes
            idx = np.flatnonzero(in_split & (data.label == c))
            if len(idx) == 0:
                continue
            k = min(len(idx), max(1, round(per_split * len(idx) / total)))
            keep.append(rng.choice(idx, size=k, replace=False))
    return data.take(np.sort(np.concatenate(keep)))
