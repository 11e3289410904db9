"""Predict emotions on any photo with the trained models.

Faces are found with MediaPipe face detection (both its full-range and short-range models, merged),
framed like FER2013 (a square 1.16x the detector's box: measured by detecting faces in FER2013
crops placed on a larger canvas; bench/predict_check.py), rotated so the eyes are level (unless
align=False: it leaves upright faces as they were and helps tilted ones, bench/predict_check.py),
and cut to 48x48 gray with INTER_AREA. 2D models take the crop; 3D models take the 478
FaceMesh landmarks found on that crop exactly as the landmarks stage finds them on FER2013 (same
attempts and confidence from params.yaml), so every model sees what it was trained on. Inputs that
already are face crops (`crops=True`, or any 48x48 image) skip detection.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import EMOTIONS
from .landmarks import Attempt

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".gif")
CROP_SIDE = 48
# FER2013's framing relative to MediaPipe's face box (median over 300 training faces set on a
# larger canvas): the crop's side is 1.16 box widths, its centre 0.03 (full-range model) / 0.09
# (short-range) box heights above the box centre. bench/predict_check.py checks it on PrivateTest.
FRAME_SCALE = 1.16
FRAME_SHIFT_Y = {1: -0.03, 0: -0.09}
# params.yaml's landmarks defaults, for model folders that come without a project around them
DEFAULT_ATTEMPTS = (
    Attempt(24, "gray", 1, False),
    Attempt(24, "gray", 4, False),
    Attempt(36, "gray", 1, True),
    Attempt(0, "gray", 1, False),
    Attempt(24, "gray", 2, True),
)
DEFAULT_MESH_CONFIDENCE = 0.3
NO_MESH = "MediaPipe FaceMesh found no face mesh on the 48x48 crop"


class InputError(ValueError):
    """One input file cannot be used (unreadable, no face); the others still are."""


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


def read_image(path: Path) -> np.ndarray:
    """uint8 (H,W) gray or (H,W,3) BGR; InputError naming the file when it is not an image."""
    import cv2

    if not path.exists():
        raise InputError(f"{path}: no such file")
    data = np.fromfile(path, np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        image = _read_with_pillow(path)
    if image is None:
        raise InputError(f"{path}: not a readable image (expected one of {', '.join(IMAGE_SUFFIXES)})")
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(image.max())))
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    return image


def _read_with_pillow(path: Path) -> np.ndarray | None:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))[:, :, ::-1].copy()
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
    side = int(round(min(side, width, height)))
    left = int(round(min(max(cx - side / 2, 0), width - side)))
    top = int(round(min(max(cy - side / 2, 0), height - side)))
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


# ------------------------------------------------------------------------------ models


@dataclass
class LoadedModel:
    name: str
    model: object  # torch.nn.Module in eval mode
    kind: str  # input kind
    family: str
    stats: dict
    context: dict
    tta: bool
    mirror: object = None  # batch → mirrored batch, for test-time flip averaging
    length_range: tuple[np.ndarray, np.ndarray] | None = None  # distances: the meshes stage's uint8 range

    def inputs(self, images: np.ndarray | None = None, points: np.ndarray | None = None):
        from .features import model_input, standardise_lengths

        if self.kind == "distances" and self.length_range is not None:
            # as the model was trained: lengths through the meshes stage's uint8 codes (clipped to
            # the training range); exact lengths shift its probabilities by up to ~0.02
            import torch

            from .geometry import center_scale
            from .mesh import dequantize, edge_lengths, quantize

            lo, hi = self.length_range
            lengths = edge_lengths(center_scale(points), np.asarray(self.context["edges"]))
            return torch.from_numpy(standardise_lengths(dequantize(quantize(lengths, lo, hi), lo, hi), self.stats))
        return model_input(self.kind, self.stats, self.context, images=images, points=points)

    def proba(self, images: np.ndarray | None = None, points: np.ndarray | None = None) -> np.ndarray:
        """(B,7) probabilities, computed as fer3d.train.predict_proba does (flip-averaged if tta)."""
        import torch

        x = self.inputs(images, points)
        with torch.no_grad():
            p = self.model(x).float().softmax(1)
            if self.tta:
                p = (p + self.model(self.mirror(x)).float().softmax(1)) / 2
        return p.numpy()


def load_for_prediction(path: Path, tta: bool | None = None) -> LoadedModel:
    """A model file ready to score crops or landmarks; tta None: as the model was evaluated."""
    from .artifacts import load_model

    model, meta = load_model(path, "cpu")
    kind, stats, context = meta["input"], meta["feature_stats"], dict(meta["context"])
    if list(meta["classes"]) != list(EMOTIONS):
        raise ValueError(f"{path}: classes {meta['classes']} differ from {list(EMOTIONS)}")
    if kind == "distances" and "edges" not in context:
        context["edges"] = _mesh_edges(context)
    if tta is None:
        tta = bool(meta.get("meta", {}).get("config", {}).get("tta_flip", True))
    return LoadedModel(
        path.stem,
        model,
        kind,
        meta["family"],
        stats,
        context,
        tta,
        _mirror(kind, stats, context),
        _length_range(stats, path.resolve().parent.parent) if kind == "distances" else None,
    )


def _length_range(stats: dict, project: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The per-edge [lo, hi] the meshes stage quantised lengths over: from the model file when it
    keeps them, else from the project's data/mesh_features.npz; None: exact lengths."""
    if "edge_length_lo" in stats:
        return np.asarray(stats["edge_length_lo"], np.float32), np.asarray(stats["edge_length_hi"], np.float32)
    path = project / "data" / "mesh_features.npz"
    if not path.exists():
        return None
    with np.load(path) as z:
        return z["edge_length_lo"], z["edge_length_hi"]


def _mesh_edges(context: dict) -> np.ndarray:
    from .mesh import mesh_edges

    edges = mesh_edges()
    if "num_edges" in context and len(edges) != context["num_edges"]:
        raise ValueError(
            f"this MediaPipe's mesh has {len(edges)} edges; the model was trained on {context['num_edges']}"
        )
    return edges


def _mirror(kind: str, stats: dict, context: dict):
    """The left↔right mirror of a batch of `kind`, as fer3d.features.load defines it."""
    import torch

    from . import augment, features

    if kind == "image":
        return augment.flip_images
    perm = torch.as_tensor(stats["mirror_perm"], dtype=torch.long)
    if kind == "landmarks":
        return lambda x: augment.mirror_landmarks(x, perm)
    if kind == "distances":
        edge_perm = torch.from_numpy(
            features.mirror_edge_permutation(np.asarray(context["edges"]), np.asarray(stats["mirror_perm"]))
        )
        return lambda x: x[:, edge_perm]
    return lambda x: x.flip(2)  # voxels: the grid's first axis is x


@dataclass
class Fusion:
    """The evaluate stage's main late fusion: softmax(sum of weight * log p) over `models`."""

    models: list[str]
    weights: list[float]


def read_fusion(summary_path: Path, row: str = "fusion") -> Fusion | None:
    """The evaluate stage's fusion `row` (its models and weights), None if it recorded none."""
    if not summary_path.exists():
        return None
    fusion = (json.loads(summary_path.read_text()).get("fusions") or {}).get(row)
    if not fusion:
        return None
    try:
        models, weights = [str(m) for m in fusion["models"]], [float(w) for w in fusion["weights"]]
        if len(models) != len(weights) or not models:
            raise ValueError("models and weights differ in length")
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"{summary_path}: fusions.{row} must hold models [...] and as many weights, found {fusion!r}"
        ) from e
    return Fusion(models, weights)


def mesh_settings(project: Path) -> tuple[list[Attempt], float]:
    """The landmarks stage's attempts and confidence from project/params.yaml (defaults without)."""
    from . import params

    path = project / "params.yaml"
    if not path.exists():
        return list(DEFAULT_ATTEMPTS), DEFAULT_MESH_CONFIDENCE
    p = params.load(path)
    attempts = [
        Attempt.from_param(a, f"{path}: landmarks.attempts[{i}]")
        for i, a in enumerate(params.get(p, "landmarks.attempts", list))
    ]
    return attempts, float(params.get(p, "landmarks.min_detection_confidence", (int, float)))


# ------------------------------------------------------------------------------ the predictor


@dataclass
class Predictor:
    """Loaded models (+ the fusion) and a FaceMesh; scores batches of 48x48 crops."""

    models: dict[str, LoadedModel]
    fusion: Fusion | None
    attempts: list[Attempt]
    mesh_confidence: float
    _mesh: object = field(default=None, repr=False)

    @property
    def names(self) -> list[str]:
        return list(self.models) + (["fusion"] if self.fusion else [])

    @property
    def needs_mesh(self) -> bool:
        return any(m.family == "3d" for m in self.models.values())

    def landmarks(self, crop: np.ndarray) -> np.ndarray | None:
        """The crop's 478 landmarks (crop pixels) as the landmarks stage finds them, or None."""
        from .landmarks import Detector

        if self._mesh is None:
            self._mesh = Detector(self.mesh_confidence)
        points, _ = self._mesh.crop_landmarks(crop, self.attempts)
        # rounded as data/landmarks.npz stores them (float16, <= 0.03 px): the 3D models then get
        # exactly the inputs the evaluate stage gives them for the same crop
        return None if points is None else points.astype(np.float16).astype(np.float32)

    def score(self, crops: Sequence[np.ndarray]) -> list[dict]:
        """Per crop: {model: {"emotion", "probability", "probabilities"} or None} plus the
        reasons for the Nones."""
        images = np.stack(crops).astype(np.uint8)
        points = [self.landmarks(c) for c in crops] if self.needs_mesh else [None] * len(crops)
        has_mesh = np.array([p is not None for p in points])
        probas: dict[str, np.ndarray | None] = {}
        for name, m in self.models.items():
            if m.kind == "image":
                probas[name] = m.proba(images=images)
            elif has_mesh.any():
                full = np.full((len(crops), len(EMOTIONS)), np.nan, np.float32)
                full[has_mesh] = m.proba(points=np.stack([p for p in points if p is not None]))
                probas[name] = full
            else:
                probas[name] = np.full((len(crops), len(EMOTIONS)), np.nan, np.float32)
        if self.fusion:
            probas["fusion"] = self._fuse(probas, has_mesh)
        return [self._face_result(probas, i, bool(has_mesh[i])) for i in range(len(crops))]

    def _fuse(self, probas: dict[str, np.ndarray], has_mesh: np.ndarray) -> np.ndarray:
        """As the evaluate stage fuses: a 3D model votes only on faces with a mesh."""
        from .evaluate import fuse

        members = self.fusion.models
        takes_part = [has_mesh if self.models[m].family == "3d" else np.ones_like(has_mesh) for m in members]
        # NaN rows (no mesh) are masked out of the sum; replace them so 0 * log(NaN) is not NaN
        return fuse([np.nan_to_num(probas[m], nan=1.0) for m in members], self.fusion.weights, takes_part)

    def _face_result(self, probas: dict[str, np.ndarray], i: int, has_mesh: bool) -> dict:
        predictions, reasons = {}, {}
        for name, p in probas.items():
            row = p[i]
            if np.isnan(row).any():
                predictions[name] = None
                reasons[name] = NO_MESH
                continue
            k = int(row.argmax())
            predictions[name] = {
                "emotion": EMOTIONS[k],
                "probability": round(float(row[k]), 5),
                "probabilities": {e: round(float(v), 6) for e, v in zip(EMOTIONS, row)},
            }
        if self.fusion and not has_mesh:
            alone = [m for m in self.fusion.models if self.models[m].family != "3d"]
            reasons["fusion"] = f"{NO_MESH}; the fusion is {' + '.join(alone)} alone"
        out = {"mesh_found": has_mesh if self.needs_mesh else None, "predictions": predictions}
        if reasons:
            out["reasons"] = reasons
        return out

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()


def available_models(models_dir: Path) -> list[str]:
    from .models import MODELS

    return [name for name in MODELS if (models_dir / f"{name}.pt").exists()]


def load_predictor(
    models_dir: str | Path = "models",
    names: Sequence[str] | None = None,
    summary: str | Path | None = None,
    tta: bool | None = None,
) -> Predictor:
    """names None: every model with a file in models_dir, plus the evaluate stage's fusion when
    metrics/summary.json (beside models_dir, or `summary`) names one. A named model whose file is
    missing is an error naming the path."""
    models_dir = Path(models_dir)
    project = models_dir.resolve().parent
    summary_path = Path(summary) if summary else project / "metrics" / "summary.json"
    wanted = list(names) if names else available_models(models_dir)
    if not wanted:
        raise FileNotFoundError(
            f"{models_dir}: no trained model files (<name>.pt); run `dvc pull` or `dvc repro` first"
        )
    fusion = read_fusion(summary_path) if (names is None or "fusion" in wanted) else None
    if "fusion" in wanted:
        if fusion is None:
            raise FileNotFoundError(
                f"{summary_path}: no fusion recorded (the evaluate stage writes it); "
                "run `dvc pull` or `dvc repro` first, or leave `fusion` out of --models"
            )
        wanted.remove("fusion")
    elif names is None and fusion is not None and not all((models_dir / f"{m}.pt").exists() for m in fusion.models):
        fusion = None
    loading = wanted + [m for m in (fusion.models if fusion else ()) if m not in wanted]
    models = {name: load_for_prediction(models_dir / f"{name}.pt", tta) for name in loading}
    attempts, confidence = mesh_settings(project)
    predictor = Predictor(models, fusion, attempts, confidence)
    if predictor.needs_mesh:
        from .landmarks import Detector

        predictor._mesh = Detector(confidence)  # now, so that per-face timings exclude its start-up
    return predictor


# ------------------------------------------------------------------------------ running


@dataclass
class Run:
    files: list[dict]
    faces: int
    seconds: float  # processing time, models and detectors already loaded

    @property
    def seconds_per_face(self) -> float | None:
        return self.seconds / self.faces if self.faces else None


def faces_in(path: Path, finder: FaceFinder | None, crops: bool, align: bool) -> tuple[list[Face], np.ndarray]:
    """The faces of one file (InputError when it has none) and the image."""
    image = read_image(path)
    if crops or is_crop(image):
        return [Face(as_crop(image), [0, 0, image.shape[1], image.shape[0]])], image
    detections = finder.find(image)
    if not detections:
        raise InputError(
            f"{path}: no face found ({image.shape[1]}x{image.shape[0]} image); "
            "if it is a face crop already, use --crops"
        )
    return [crop_face(image, d, align) for d in detections], image


def predict_files(
    paths: Iterable[str | Path],
    predictor: Predictor,
    crops: bool = False,
    align: bool = True,
    finder: FaceFinder | None = None,
    on_file=None,
) -> Run:
    """Every input file → {"file", "error" or "faces": [{"index", "box", ..., "predictions"}]}."""
    own_finder = finder is None and not crops
    finder = FaceFinder() if own_finder else finder
    files, n_faces, seconds = [], 0, 0.0
    try:
        for path in list_inputs(paths):
            start = time.perf_counter()
            entry = _predict_file(path, predictor, finder, crops, align)
            seconds += time.perf_counter() - start
            n_faces += len(entry.get("faces", []))
            files.append(entry)
            if on_file:
                on_file(entry)
    finally:
        if own_finder:
            finder.close()
    return Run(files, n_faces, seconds)


def _predict_file(path: Path, predictor: Predictor, finder: FaceFinder | None, crops: bool, align: bool) -> dict:
    try:
        faces, image = faces_in(path, finder, crops, align)
    except InputError as e:
        return {"file": str(path), "error": str(e), "faces": []}
    results = predictor.score([f.crop for f in faces])
    out = []
    for i, (face, result) in enumerate(zip(faces, results)):
        out.append(
            {"index": i, "box": face.box, "detection_score": face.score, "rotation_degrees": face.angle, **result}
        )
    return {"file": str(path), "image_size": [int(image.shape[1]), int(image.shape[0])], "faces": out}


def result_json(run: Run, predictor: Predictor, crops: bool, align: bool) -> dict:
    return {
        "classes": list(EMOTIONS),
        "models": predictor.names,
        "fusion": vars(predictor.fusion) if predictor.fusion else None,
        "mode": "crops" if crops else "detect",
        "align_eyes": align,
        "faces": run.faces,
        "seconds_per_face": round(run.seconds_per_face, 4) if run.faces else None,
        "files": run.files,
    }


def table(files: list[dict], names: Sequence[str]) -> str:
    """A plain-text table: one row per face (or per failed file), one column per model."""
    head = ["file", "face", "box"] + list(names)
    rows = []
    for entry in files:
        if entry.get("error"):
            rows.append([entry["file"], "-", "-", "error: " + entry["error"].removeprefix(f"{entry['file']}: ")])
            continue
        for face in entry["faces"]:
            cells = [entry["file"], str(face["index"]), ",".join(map(str, face["box"]))]
            for name in names:
                p = face["predictions"].get(name)
                cells.append("null (no mesh)" if p is None else f"{p['emotion']} {p['probability']:.2f}")
            rows.append(cells)
    widths = [
        max([len(h)] + [len(r[i]) for r in rows if len(r) > i and not r[3].startswith("error")])
        for i, h in enumerate(head)
    ]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    body = [line(r) if not r[3].startswith("error") else "  ".join(r) for r in rows]
    return "\n".join([line(head), line(["-" * w for w in widths])] + body)


# ------------------------------------------------------------------------------ 3D faces


def mesh_topology(project: Path, mean_face_from: dict | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(triangles, neutral mean face) from project/data/mesh_topology.npz; without it, triangles
    from MediaPipe's tesselation and the mean face from a 3D model file's feature_stats."""
    from .io import load_npz
    from .mesh import mesh_edges, mesh_triangles

    path = project / "data" / "mesh_topology.npz"
    if path.exists():
        topology = load_npz(path)
        return topology["triangles"], topology["mean_face"]
    edges = mesh_edges()
    mean_face = (mean_face_from or {}).get("mean_face")
    return mesh_triangles(edges[edges.max(1) < 468]), None if mean_face is None else np.asarray(mean_face, np.float32)


def face_meshes(
    path: Path, project: Path, crops: bool = False, align: bool = True
) -> list[tuple[Face, np.ndarray | None]]:
    """The faces of one image and each one's 478 crop-frame landmarks (None where FaceMesh finds
    none), found as the landmarks stage finds them."""
    from .landmarks import Detector

    finder = None if crops else FaceFinder()
    try:
        faces, _ = faces_in(path, finder, crops, align)
    finally:
        if finder is not None:
            finder.close()
    attempts, confidence = mesh_settings(project)
    detector = Detector(confidence)
    try:
        return [(face, detector.crop_landmarks(face.crop, attempts)[0]) for face in faces]
    finally:
        detector.close()
