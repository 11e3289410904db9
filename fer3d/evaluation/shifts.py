"""The shift suite: test images as other cameras would have taken them.

FER2013's own test split is not what users meet: their photos are framed tighter or looser, lit
and contrasted differently, blurred or sharpened. Each shift is a deterministic transform of the
48x48 uint8 crops, written `kind:value` in params (`shifts.suite`):

- zoom:f      crop f times the face box about its centre, resized back to 48x48 (f < 1 tighter,
              f > 1 looser; pixels beyond the crop repeat its edge, FER2013 keeps no surroundings)
- gamma:g     255 * (x / 255) ** g (g < 1 brighter mid-tones, g > 1 darker)
- contrast:c  each image's mean + c * (x - mean)
- blur:s      Gaussian blur with sigma s pixels
- unsharp:a   unsharp-mask sharpening x + a * (x - blur_1(x))
- rotate:d    rotation by +d degrees on even rows and -d on odd rows (of the dataset: an image turns
              the same way whichever subset it is shifted in), about the centre

The suite's mean accuracy is "shifted accuracy". The 3D models see the FaceMesh points found on
the shifted image (stage shift_landmarks), so they meet the shift where it really hits them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..config import TEST, VAL

DEFAULT_SUITE = ("zoom:0.85", "zoom:1.15", "gamma:0.6", "gamma:1.6", "contrast:0.6", "blur:1", "unsharp:1", "rotate:10")

# kind -> (the value's allowed open range, a short description for errors)
_RANGES = {
    "zoom": (0.25, 4.0),
    "gamma": (0.1, 10.0),
    "contrast": (0.0, 4.0),
    "blur": (0.0, 8.0),
    "unsharp": (0.0, 8.0),
    "rotate": (0.0, 90.0),
}


@dataclass(frozen=True)
class Shift:
    kind: str
    value: float

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.value:g}"

    @classmethod
    def parse(cls, text: object, where: str = "shifts.suite") -> Shift:
        if not isinstance(text, str) or text.count(":") != 1:
            raise ValueError(
                f"{where}: expected 'kind:value' (e.g. blur:1) with kind one of {list(_RANGES)}, found {text!r}"
            )
        kind, raw = (s.strip() for s in text.split(":"))
        if kind not in _RANGES:
            raise ValueError(f"{where}: unknown shift {kind!r} in {text!r}; known: {', '.join(_RANGES)}")
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{where}: {text!r}: the value after ':' must be a number, found {raw!r}") from None
        lo, hi = _RANGES[kind]
        if not lo < value <= hi:
            raise ValueError(f"{where}: {text!r}: {kind} must be in ({lo:g}, {hi:g}], found {value:g}")
        return cls(kind, value)

    def __call__(self, images: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """(N, 48, 48) uint8 → the shifted (N, 48, 48) uint8. `rows`: each image's row in the dataset
        (default: its position), which sets rotate's direction, so that the 2D crops and the FaceMesh
        points of one image are shifted alike when the stages shift different subsets."""
        images = np.asarray(images)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"shift {self.name}: expects (N, H, W) uint8 crops, found {images.dtype} {images.shape}")
        rows = np.arange(len(images)) if rows is None else np.asarray(rows)
        if rows.shape != (len(images),):
            raise ValueError(f"shift {self.name}: one row per image expected, found {rows.shape} for {len(images)}")
        out = _APPLY[self.kind](images.astype(np.float32), rows, self.value)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def parse_suite(items: object, where: str = "shifts.suite") -> list[Shift]:
    """params' list of 'kind:value' → Shifts (names unique, at least one)."""
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(f"{where}: expected a non-empty list like {list(DEFAULT_SUITE)}, found {items!r}")
    suite = [Shift.parse(s, f"{where}[{i}]") for i, s in enumerate(items)]
    names = [s.name for s in suite]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: a shift is listed twice: {names}")
    return suite


SPLIT_CHOICES = {"val": VAL, "test": TEST}  # PublicTest (for choosing), PrivateTest (reported)


def parse_splits(items: object, where: str = "shifts.splits") -> dict[str, int]:
    """params' list of splits to shift ("val", "test") → name -> split index, PrivateTest first."""
    if not isinstance(items, list | tuple) or not items or any(i not in SPLIT_CHOICES for i in items):
        raise ValueError(f"{where}: expected a non-empty list of {list(SPLIT_CHOICES)}, found {items!r}")
    if len(set(items)) != len(items):
        raise ValueError(f"{where}: a split is listed twice: {list(items)}")
    return {k: SPLIT_CHOICES[k] for k in ("test", "val") if k in items}


def _per_image(fn: Callable[[np.ndarray, int, float], np.ndarray]) -> Callable[..., np.ndarray]:
    def apply(images: np.ndarray, rows: np.ndarray, value: float) -> np.ndarray:
        return np.stack([fn(img, int(row), value) for img, row in zip(images, rows)]) if len(images) else images

    return apply


def _warp(img: np.ndarray, angle: float, zoom: float) -> np.ndarray:
    """Rotate by `angle` degrees and magnify by `zoom` about the centre; edges repeated."""
    import cv2

    h, w = img.shape
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, zoom)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def _contrast(x: np.ndarray, c: float) -> np.ndarray:
    mean = x.mean(axis=(1, 2), keepdims=True)
    return mean + c * (x - mean)


_APPLY: dict[str, Callable[[np.ndarray, np.ndarray, float], np.ndarray]] = {  # (images, rows, value)
    # cropping f of the box and resizing it to the full side magnifies by 1/f
    "zoom": _per_image(lambda img, i, f: _warp(img, 0.0, 1.0 / f)),
    "gamma": lambda x, _rows, g: 255.0 * (x / 255.0) ** g,
    "contrast": lambda x, _rows, c: _contrast(x, c),
    "blur": _per_image(lambda img, i, s: _blur(img, s)),
    "unsharp": _per_image(lambda img, i, a: img + a * (img - _blur(img, 1.0))),
    "rotate": _per_image(lambda img, row, d: _warp(img, d if row % 2 == 0 else -d, 1.0)),
}


def shifted_accuracy(accuracy: dict[str, float], suite: Sequence[Shift]) -> float:
    """The suite's mean accuracy (every shift weighs the same)."""
    return float(np.mean([accuracy[s.name] for s in suite]))
