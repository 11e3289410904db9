"""Faces in people's images: read any image file, find the faces (MediaPipe face detection), frame
each like FER2013 (a square 1.16x the detector's box: measured by detecting faces in FER2013 crops
placed on a larger canvas; bench/predict_check.py), rotate it so the eyes are level (unless
align=False), and cut a 48x48 gray crop with INTER_AREA. Inputs that already are face crops
(`crops=True`, or any 48x48 image) skip detection."""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import CROP_SIDE

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".gif")
# FER2013's framing relative to MediaPipe's face box (median over 300 training faces set on a
# larger canvas): the crop's side is 1.16 box widths, its centre 0.03 (full-range model) / 0.09
# (short-range) box heights above the box centre. bench/predict_check.py checks it on PrivateTest.
FRAME_SCALE = 1.16
FRAME_SHIFT_Y = {1: -0.03, 0: -0.09}
# params.yaml's landmarks defaults, for model folders that come without a project around them


class InputError(ValueError):
    """One input file cannot be used (unreadable, no face); the others still are."""

    def telling(self, crops_option: str) -> str:
        """The message for a caller whose way to say "this image is a face crop" is `crops_option`
        (the CLI's --crops, the service's crops=true); only NoFaceFound's mentions it."""
        return str(self)


# ------------------------------------------------------------------------------ reading inputs


def list_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the image files inside folders (recursively, sorted). Paths that do
    not exist stay in the list so that each gets its own error."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(p)
    return out


def not_an_image(name: str | Path, data: bytes | None = None) -> InputError:
    """What a file that decodes as no image was, as far as its bytes say."""
    if data is None:
        found = ""
    elif not data:
        found = "the file is empty; "
    else:
        kind = _sniff(data)
        found = f"its {len(data):,} bytes {f'look like {kind}' if kind else 'decode with neither OpenCV nor Pillow'}; "
    return InputError(f"{name}: not a readable image ({found}expected one of {', '.join(IMAGE_SUFFIXES)})")


_MAGIC = [  # (offset, bytes, what a file starting so is)
    (0, b"\xff\xd8", "a JPEG that is damaged or cut off"),
    (0, b"\x89PNG", "a PNG that is damaged or cut off"),
    (4, b"ftyp", "an MP4/MOV video (videos are read by their suffix: rename it)"),
    (0, b"\x1a\x45\xdf\xa3", "a WebM/MKV video (videos are read by their suffix: rename it)"),
    (8, b"AVI ", "an AVI video (videos are read by their suffix: rename it)"),
    (0, b"%PDF", "a PDF document"),
    (0, b"PK\x03\x04", "a ZIP archive"),
]


def _sniff(data: bytes) -> str | None:
    for offset, magic, kind in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return kind
    head = data[:512]
    if all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return "text"
    return None


def read_image(path: Path) -> np.ndarray:
    """uint8 (H,W) gray or (H,W,3) BGR; InputError naming the file when it is not an image."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        data = path.read_bytes()
    except OSError as e:  # a folder's unreadable file fails alone, not the whole run
        raise InputError(f"{path}: cannot be read ({e.strerror or e})") from None
    return decode_image(data, str(path))


# EXIF orientation (tag 0x0112) -> how to turn the stored pixels upright, as cameras and phones mean it
_ORIENT = {
    2: lambda cv2, im: cv2.flip(im, 1),
    3: lambda cv2, im: cv2.rotate(im, cv2.ROTATE_180),
    4: lambda cv2, im: cv2.flip(im, 0),
    5: lambda cv2, im: cv2.transpose(im),
    6: lambda cv2, im: cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE),
    7: lambda cv2, im: cv2.rotate(cv2.transpose(im), cv2.ROTATE_180),
    8: lambda cv2, im: cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def upright(image: np.ndarray, data: bytes) -> np.ndarray:
    """The decoded pixels turned as the file's EXIF orientation says: phones store portrait photos
    sideways with a tag, and cv2's IMREAD_UNCHANGED ignores it (a sideways face is not found)."""
    import cv2
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            orientation = int(img.getexif().get(0x0112, 1))
    except Exception:  # no EXIF, or a format Pillow does not know: as decoded
        return image
    turn = _ORIENT.get(orientation)
    return np.ascontiguousarray(turn(cv2, image)) if turn else image


def _normalise_decoded(image: np.ndarray) -> np.ndarray:
    """8-bit gray or BGR from whatever cv2/Pillow decoded (16-bit, alpha, one channel)."""
    import cv2

    if image.dtype != np.uint8:
        if image.dtype.kind == "f":  # a float TIFF or EXR may hold NaN or inf: black there
            image = np.where(np.isfinite(image), image, 0).astype(np.float32)
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1.0, float(image.max())))
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    return image


def _read_with_pillow(path: Path | io.BytesIO) -> np.ndarray | None:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))[:, :, ::-1].copy()
    except Exception:  # PIL raises many types for files that are not images
        return None


def to_gray(image: np.ndarray) -> np.ndarray:
    import cv2

    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def as_crop(image: np.ndarray) -> np.ndarray:
    """An image that already is a face crop → 48x48 gray uint8."""
    import cv2

    gray = to_gray(image)
    if gray.shape != (CROP_SIDE, CROP_SIDE):
        gray = cv2.resize(gray, (CROP_SIDE, CROP_SIDE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(gray)


def is_crop(image: np.ndarray) -> bool:
    return image.shape[:2] == (CROP_SIDE, CROP_SIDE)


# ------------------------------------------------------------------------------ finding faces


@dataclass
class Detection:
    box: tuple[float, float, float, float]  # x, y, w, h in pixels (the detector's tight box)
    eyes: np.ndarray  # (2,2) pixels: the subject's right eye (image left), then left eye
    score: float
    model_selection: int


@dataclass
class Face:
    crop: np.ndarray  # (48,48) uint8
    box: list[int]  # x, y, w, h of the square cut from the image, original pixels
    score: float | None = None
    angle: float = 0.0  # degrees the face was rotated by to level the eyes


class FaceFinder:
    """MediaPipe face detection with the full-range (1) and short-range (0) models; detections
    of the same face by both are merged (the more confident one kept)."""

    def __init__(self, min_confidence: float = 0.5):
        os.environ.setdefault("GLOG_minloglevel", "2")
        import mediapipe as mp

        fd = mp.solutions.face_detection
        self.detectors = {
            sel: fd.FaceDetection(model_selection=sel, min_detection_confidence=min_confidence) for sel in (1, 0)
        }

    def find(self, image: np.ndarray) -> list[Detection]:
        import cv2

        rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        found = []
        for sel, detector in self.detectors.items():
            for d in detector.process(rgb).detections or []:
                b = d.location_data.relative_bounding_box
                kp = d.location_data.relative_keypoints
                found.append(
                    Detection(
                        (b.xmin * w, b.ymin * h, b.width * w, b.height * h),
                        np.array([[kp[0].x * w, kp[0].y * h], [kp[1].x * w, kp[1].y * h]]),
                        float(d.score[0]),
                        sel,
                    )
                )
        return _merge(found)

    def close(self) -> None:
        for detector in self.detectors.values():
            detector.close()

    def __enter__(self) -> FaceFinder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def face_finder(crops: bool) -> Iterator[FaceFinder | None]:
    """A FaceFinder for photos, closed afterwards; None when the inputs are crops already."""
    if crops:
        yield None
        return
    with FaceFinder() as finder:
        yield finder


def _iou(a: tuple, b: tuple) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / max(1e-9, a[2] * a[3] + b[2] * b[3] - inter)


def _merge(detections: list[Detection], iou: float = 0.3) -> list[Detection]:
    """Non-maximum suppression, then left-to-right order (face indices follow the picture)."""
    kept: list[Detection] = []
    for d in sorted(detections, key=lambda d: -d.score):
        if all(_iou(d.box, k.box) < iou for k in kept):
            kept.append(d)
    return sorted(kept, key=lambda d: (d.box[0], d.box[1]))


def square_box(det: Detection, width: int, height: int) -> tuple[int, int, int]:
    """FER2013-like square (x, y, side) around a detection, moved (and if need be shrunk) to lie
    inside the image."""
    x, y, w, h = det.box
    side = FRAME_SCALE * max(w, h)
    cx, cy = x + w / 2, y + h / 2 + FRAME_SHIFT_Y[det.model_selection] * h
    side = round(min(side, width, height))
    left = round(min(max(cx - side / 2, 0), width - side))
    top = round(min(max(cy - side / 2, 0), height - side))
    return left, top, max(side, 1)


def eye_angle(det: Detection) -> float:
    """Degrees from the horizontal of the line from the right eye to the left eye (image axes)."""
    (rx, ry), (lx, ly) = det.eyes
    return math.degrees(math.atan2(ly - ry, lx - rx))


def crop_face(image: np.ndarray, det: Detection, align: bool = False) -> Face:
    """The detection's FER-like square, rotated about its centre to level the eyes if `align`,
    as a 48x48 gray crop (INTER_AREA)."""
    import cv2

    gray = to_gray(image)
    left, top, side = square_box(det, gray.shape[1], gray.shape[0])
    angle = eye_angle(det) if align else 0.0
    if abs(angle) > 0.5:
        centre = (left + side / 2, top + side / 2)
        rotation = cv2.getRotationMatrix2D(centre, angle, 1.0)
        rotation[:, 2] -= (left, top)  # output: the square's own frame
        square = cv2.warpAffine(gray, rotation, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    else:
        square = gray[top : top + side, left : left + side]
    crop = cv2.resize(square, (CROP_SIDE, CROP_SIDE), interpolation=cv2.INTER_AREA)
    return Face(np.ascontiguousarray(crop), [left, top, side, side], round(det.score, 4), round(angle, 2))


def faces_in(path: Path, finder: FaceFinder | None, crops: bool, align: bool) -> tuple[list[Face], np.ndarray]:
    """The faces of one file (InputError when it has none) and the image."""
    image = read_image(path)
    return faces_in_image(image, finder, crops, align, name=str(path)), image


def faces_in_image(
    image: np.ndarray, finder: FaceFinder | None, crops: bool, align: bool, name: str = "image"
) -> list[Face]:
    """The faces of one decoded image (InputError naming `name` when it has none)."""
    if crops or is_crop(image):
        return [Face(as_crop(image), [0, 0, image.shape[1], image.shape[0]])]
    detections = finder.find(image)
    if not detections:
        raise NoFaceFound(name, image.shape)
    return [crop_face(image, d, align) for d in detections]


class NoFaceFound(InputError):
    """The detector found no face; the message says how to pass the image as a crop."""

    def __init__(self, name: str, shape: tuple):
        self.name, self.shape = name, shape
        super().__init__(self.telling("--crops"))

    def telling(self, crops_option: str) -> str:
        size = f"{self.shape[1]}x{self.shape[0]}"
        return f"{self.name}: no face found ({size} image); if it is a face crop already, use {crops_option}"


MAX_PIXELS = 50_000_000  # a small file can decode to a huge image (e.g. a flat PNG); refuse before decoding
CV2_MAX_PIXELS = 1 << 30  # OpenCV's own CV_IO_MAX_IMAGE_PIXELS: imdecode raises above it


class ImageTooLarge(InputError):
    """The image's header asks for more pixels than MAX_PIXELS."""


def check_image_size(data: bytes, name: str = "upload", limit: int = MAX_PIXELS) -> None:
    """Before decoding bytes from a network caller: ImageTooLarge when the header says more than
    `limit` pixels, InputError when Pillow cannot read a size at all. Every accepted format has a
    size Pillow reads; OpenCV also decodes others (Radiance .hdr, OpenEXR) whose few header bytes
    can ask for gigabytes, unchecked."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
    except Image.DecompressionBombError as e:
        raise ImageTooLarge(f"{name}: too large to decode ({e})") from None
    except Exception:
        raise not_an_image(name) from None
    if width * height > limit:
        raise ImageTooLarge(
            f"{name}: {width}x{height} image ({width * height / 1e6:.0f} megapixels); "
            f"the limit is {limit / 1e6:.0f} megapixels"
        )


def decode_image(data: bytes, name: str = "upload") -> np.ndarray:
    """Bytes of an image file → uint8 gray or BGR, as read_image reads files; InputError naming `name`."""
    import cv2

    buffer = np.frombuffer(data, np.uint8)
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None
    except cv2.error:  # OpenCV refuses a header asking for over a gigapixel (a 128-byte PNG can)
        check_image_size(data, name, limit=CV2_MAX_PIXELS)  # ImageTooLarge naming the size, if Pillow reads one
        raise not_an_image(name, data) from None
    if image is not None:
        image = upright(image, data)
    if image is None and buffer.size:
        image = _read_with_pillow(io.BytesIO(data))
    if image is None:
        raise not_an_image(name, data)
    return _normalise_decoded(image)
