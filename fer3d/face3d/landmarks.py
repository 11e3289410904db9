"""MediaPipe Face Mesh landmarks (478 points with irises) for 48x48 face crops, in parallel.

FaceMesh's detector misses many tight 48x48 crops; a border around the crop fixes most misses
(DESIGN.md). Each image is tried with the `attempts` in order until a face is found; landmarks
found on a padded/upscaled image are mapped back to the 48x48 frame, in pixels (x right, y down,
z depth on the x scale, smaller = nearer the camera). With `mirror_average`, FaceMesh also reads the
mirrored crop, and its points, mirrored back, are averaged with the plain ones: on 48x48 crops the two
readings disagree by ~1.2 px a point, and the average is steadier (docs/experiments.md, "What we tried").
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..config import EMOTIONS, NUM_POINTS, SPLITS
from .facemesh_mirror import MIRROR_PERMUTATION

FILLS = ("gray", "replicate")


@dataclass(frozen=True)
class Attempt:
    pad: int = 24  # border in 48x48 pixels
    fill: str = "gray"  # gray: constant mid-gray border; replicate: repeat the edge pixels
    scale: int = 1  # upscale factor after padding
    contrast: bool = False  # CLAHE before padding

    @classmethod
    def from_param(cls, value: dict, where: str) -> Attempt:
        if not isinstance(value, dict):
            raise ValueError(
                f"{where}: expected a mapping like {{pad: 24, fill: gray, scale: 1, contrast: false}}, found {value!r}"
            )
        unknown = set(value) - {"pad", "fill", "scale", "contrast"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}; allowed: pad, fill, scale, contrast")
        a = cls(**value)
        if not isinstance(a.pad, int) or a.pad < 0:
            raise ValueError(f"{where}.pad must be an integer >= 0, found {a.pad!r}")
        if a.fill not in FILLS:
            raise ValueError(f"{where}.fill must be one of {FILLS}, found {a.fill!r}")
        if not isinstance(a.scale, int) or not 1 <= a.scale <= 8:
            raise ValueError(f"{where}.scale must be an integer 1..8, found {a.scale!r}")
        if not isinstance(a.contrast, bool):
            raise ValueError(f"{where}.contrast must be true or false, found {a.contrast!r}")
        return a

    @classmethod
    def list_from_param(cls, values: list, where: str = "params.yaml: landmarks.attempts") -> list[Attempt]:
        """params' landmarks.attempts (a list of mappings) → Attempts, each checked."""
        return [cls.from_param(a, f"{where}[{i}]") for i, a in enumerate(values)]


def preprocess(image: np.ndarray, attempt: Attempt) -> np.ndarray:
    """48x48 gray uint8 → the RGB image FaceMesh sees for this attempt."""
    import cv2

    img = image
    if attempt.contrast:
        img = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply(img)
    if attempt.pad:
        border = cv2.BORDER_REPLICATE if attempt.fill == "replicate" else cv2.BORDER_CONSTANT
        img = cv2.copyMakeBorder(img, *(attempt.pad,) * 4, border, value=128)
    if attempt.scale != 1:
        img = cv2.resize(img, None, fx=attempt.scale, fy=attempt.scale, interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)


def mirror_back(points: np.ndarray, width: int) -> np.ndarray:
    """Points (..., 478, 3) found on a left-right mirrored crop of `width` px → the same face's points
    on the crop: x → width − x, and each point takes its mirror partner's place (the left eye's points
    become the right eye's)."""
    out = points[..., MIRROR_PERMUTATION, :]  # fancy indexing: a copy
    out[..., 0] = width - out[..., 0]
    return out


def to_crop_frame(normalized: np.ndarray, side: int, attempt: Attempt) -> np.ndarray:
    """FaceMesh's normalised (x, y, z) on the processed image → pixels of the original crop."""
    px = normalized * (side / attempt.scale)
    px[:, :2] -= attempt.pad
    return px


class Detector:
    """One FaceMesh (static images, refined → 478 points); not shareable across processes."""

    def __init__(self, min_detection_confidence: float = 0.5):
        os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ info/warning lines
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import mediapipe as mp

        self.mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=min_detection_confidence,
        )

    def detect(self, rgb: np.ndarray) -> np.ndarray | None:
        """(478,3) normalised landmarks of the most confident face, or None."""
        result = self.mesh.process(rgb)
        if not result.multi_face_landmarks:
            return None
        pts = result.multi_face_landmarks[0].landmark
        return np.array([(p.x, p.y, p.z) for p in pts], np.float32)

    def first_found(self, image: np.ndarray, attempts: Iterable[Attempt]) -> tuple[np.ndarray | None, int]:
        """Landmarks of a crop in its own pixel frame from the first attempt that finds a face, and
        that attempt's index, or (None, -1)."""
        for i, attempt in enumerate(attempts):
            rgb = preprocess(image, attempt)
            pts = self.detect(rgb)
            if pts is not None:
                return to_crop_frame(pts, rgb.shape[1], attempt), i
        return None, -1

    def crop_landmarks(
        self, image: np.ndarray, attempts: Iterable[Attempt], mirror_average: bool = False
    ) -> tuple[np.ndarray | None, int]:
        """Landmarks (478,3) float32 of a 48x48 crop in its own pixel frame and the index of the
        attempt that found them, or (None, -1). mirror_average: the mirrored crop is read too (its own
        attempts in order) and the two readings averaged; a face either reading finds counts (the
        index is the plain reading's, else the mirrored one's)."""
        attempts = tuple(attempts)
        plain, used = self.first_found(image, attempts)
        if not mirror_average:
            return plain, used
        mirrored, mirrored_used = self.first_found(np.ascontiguousarray(image[:, ::-1]), attempts)
        if mirrored is None:
            return plain, used
        back = mirror_back(mirrored, image.shape[1])
        if plain is None:
            return back, mirrored_used
        return 0.5 * (plain + back), used

    def close(self) -> None:
        self.mesh.close()


# ------------------------------------------------------------ parallel extraction

_worker: dict = {}


def _init_worker(
    min_detection_confidence: float, attempts: tuple[Attempt, ...], mirror_average: bool, ignore_sigint: bool = False
) -> None:
    if ignore_sigint:
        # Ctrl-C reaches the whole process group: the parent alone handles it, and ends the workers
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker["detector"] = Detector(min_detection_confidence)
    _worker["attempts"] = attempts
    _worker["mirror_average"] = mirror_average


def _process_chunk(args: tuple[int, np.ndarray]) -> tuple[int, np.ndarray, np.ndarray]:
    start, images = args
    out = np.zeros((len(images), NUM_POINTS, 3), np.float32)
    attempt_used = np.full(len(images), -1, np.int8)
    for i, image in enumerate(images):
        pts, used = _worker["detector"].crop_landmarks(image, _worker["attempts"], _worker["mirror_average"])
        if pts is not None:
            out[i], attempt_used[i] = pts, used
    return start, out, attempt_used


def extract(
    images: np.ndarray,
    attempts: list[Attempt],
    workers: int = 0,
    min_detection_confidence: float = 0.5,
    chunk: int = 64,
    progress: bool = True,
    mirror_average: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks (N,478,3) float32 in crop pixels (zeros where none) and the attempt index that
    found each face (-1: not found) for uint8 images (N,48,48); mirror_average: Detector.crop_landmarks'."""
    import multiprocessing as mp_

    from tqdm import tqdm

    if not attempts:
        raise ValueError("landmarks.attempts: at least one attempt is needed")
    workers = workers or os.cpu_count() or 1
    n = len(images)
    landmarks = np.zeros((n, NUM_POINTS, 3), np.float32)
    attempt_used = np.full(n, -1, np.int8)
    jobs = [(s, images[s : s + chunk]) for s in range(0, n, chunk)]
    bar = tqdm(total=n, unit="img", desc="landmarks", disable=not progress, mininterval=2)
    init_args = (min_detection_confidence, tuple(attempts), bool(mirror_average))
    if workers == 1:
        _init_worker(*init_args)
        results = map(_process_chunk, jobs)
        pool = None
    else:
        # spawn, not fork: MediaPipe's graph threads do not survive a fork
        pool = mp_.get_context("spawn").Pool(workers, _init_worker, (*init_args, True))
        results = pool.imap_unordered(_process_chunk, jobs)
    finished = False
    try:
        for start, pts, used in results:
            landmarks[start : start + len(pts)] = pts
            attempt_used[start : start + len(pts)] = used
            bar.update(len(pts))
        finished = True
    finally:
        bar.close()
        if pool is not None:
            if finished:
                pool.close()
            else:  # Ctrl-C or an error: stop the workers now instead of waiting for their chunks
                pool.terminate()
            pool.join()
    return landmarks, attempt_used


def detection_report(
    found: np.ndarray,
    label: np.ndarray,
    split: np.ndarray,
    attempt_used: np.ndarray,
    attempts: list[Attempt],
    classes: tuple[str, ...] = EMOTIONS,
) -> dict:
    """Detection rate overall, per split, per class, per split × class, and per attempt."""

    def rate(mask: np.ndarray) -> dict:
        n = int(mask.sum())
        return {
            "images": n,
            "found": int(found[mask].sum()),
            "rate": round(float(found[mask].mean()), 5) if n else None,
        }

    everything = np.ones(len(found), bool)
    return {
        "all": rate(everything),
        "per_split": {name: rate(split == s) for s, name in enumerate(SPLITS)},
        "per_class": {name: rate(label == c) for c, name in enumerate(classes)},
        "per_split_class": {
            sname: {cname: rate((split == s) & (label == c)) for c, cname in enumerate(classes)}
            for s, sname in enumerate(SPLITS)
        },
        "found_by_attempt": [
            {"attempt": i, **vars(a), "found": int((attempt_used == i).sum())} for i, a in enumerate(attempts)
        ],
    }
