"""What every model backend shares, without torch: the FaceMesh settings a 3D model's file keeps,
and how a classifier turns faces into (N, C) probabilities batch by batch, answering with the
training class prior for a face without a mesh. `Classifier` (torch, fer3d.inference.classifier)
and `OnnxClassifier` (onnxruntime, fer3d.inference.onnx_runtime) differ only in `proba_batch`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..face3d.landmarks import Attempt

# the batch the evaluate stage has always scored with: the same batches give the same floats
DEFAULT_BATCH_SIZE = 512


@dataclass(frozen=True)
class MeshSettings:
    """How FaceMesh found the points a 3D model was trained on (the landmarks stage's params)."""

    attempts: tuple[Attempt, ...]
    min_detection_confidence: float
    mirror_average: bool = False  # the mirrored crop read too and averaged in (files before it: off)

    @classmethod
    def from_payload(cls, value: dict) -> MeshSettings:
        attempts = tuple(
            Attempt.from_param(a, f"model file landmarks.attempts[{i}]") for i, a in enumerate(value["attempts"])
        )
        mirror_average = value.get("mirror_average", False)
        if not isinstance(mirror_average, bool):
            raise ValueError(f"model file landmarks.mirror_average must be true or false, found {mirror_average!r}")
        return cls(attempts, float(value["min_detection_confidence"]), mirror_average)


def as_crops(crops, who: str = "") -> np.ndarray:
    """uint8 (N,48,48) face crops; refused with a message: another shape, or values that are not
    whole numbers in 0..255 (a float image in 0..1 would otherwise turn black, 300 wrap to 44)."""
    array = np.asarray(crops)
    where = f"{who}: " if who else ""
    if array.ndim != 3 or array.shape[1:] != (48, 48):
        raise ValueError(f"{where}crops must be 48x48 gray faces, an array (N, 48, 48); found shape {array.shape}")
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{where}crops must be uint8 pixels 0..255; found dtype {array.dtype}")
    if array.size and not np.isfinite(array).all():
        raise ValueError(f"{where}crops must be pixels 0..255; found non-finite values (NaN or infinity)")
    if array.size and not (array.min() >= 0 and array.max() <= 255):
        raise ValueError(f"{where}crops must be pixels 0..255; found {array.dtype} from {array.min()} to {array.max()}")
    if array.size and not np.array_equal(array, np.round(array)):
        raise ValueError(
            f"{where}crops must be uint8 pixels 0..255; found {array.dtype} with fractions "
            f"(0..{float(array.max()):g}: scale a 0..1 image by 255 and round)"
        )
    return array.astype(np.uint8)


def as_points(points, has_mesh, who: str = "") -> tuple[np.ndarray, np.ndarray]:
    """float32 (N,478,3) crop-frame points and bool (N,) has_mesh. Without has_mesh a row of zeros
    is a face without a mesh, as the landmarks stage stores one."""
    array = np.asarray(points, np.float32)
    where = f"{who}: " if who else ""
    if array.ndim != 3 or array.shape[1:] != (478, 3):
        raise ValueError(f"{where}points must be FaceMesh's 478 (x, y, z), an array (N, 478, 3); found {array.shape}")
    if has_mesh is None:
        has_mesh = array.any(axis=(1, 2))
    has_mesh = np.asarray(has_mesh, bool)
    if has_mesh.shape != (len(array),):
        raise ValueError(f"{where}has_mesh must be one flag per face ({len(array)}); found shape {has_mesh.shape}")
    return array, has_mesh


class ClassifierBase:
    """Sets name, family, kind, classes, prior (float32), tta_flip, mesh_settings, batch_size,
    source; a subclass implements `proba_batch`."""

    name: str
    family: str
    kind: str
    classes: list[str]
    prior: np.ndarray
    tta_flip: bool
    mesh_settings: MeshSettings | None
    batch_size: int
    source: str

    @property
    def needs_mesh(self) -> bool:
        return self.kind != "image"

    def encode(self, crops: np.ndarray | None = None, points: np.ndarray | None = None):
        raise NotImplementedError

    def check_file(self) -> None:
        """At load, what a file needs beyond its top-level keys: a prior per class, a 3D model's
        FaceMesh settings, and the input stats its encoding reads (one synthetic face is encoded),
        so that a damaged or hand-made file fails here, named, not at the first prediction."""
        where = self.source or self.name
        if len(self.prior) != len(self.classes):
            raise ValueError(f"{where}: prior has {len(self.prior)} classes, the model {len(self.classes)}")
        if self.needs_mesh and self.mesh_settings is None:
            raise ValueError(
                f"{where}: a {self.kind} model file must keep the FaceMesh settings its landmarks were found with "
                "('landmarks')"
            )
        try:
            if self.needs_mesh:
                self.encode(points=np.random.default_rng(0).normal(24, 8, (1, 478, 3)).astype(np.float32))
            else:
                self.encode(crops=np.zeros((1, 48, 48), np.uint8))
        except (KeyError, TypeError, IndexError, ValueError) as e:
            raise ValueError(
                f"{where}: the model file's input_stats cannot encode a face for a {self.kind} model "
                f"({type(e).__name__}: {e})"
            ) from None

    def proba_batch(self, crops: np.ndarray | None = None, points: np.ndarray | None = None) -> np.ndarray:
        """(B, C) float32 of one batch of crops (2D) or crop-frame points (3D)."""
        raise NotImplementedError

    def predict_proba(
        self, crops: np.ndarray | None = None, points: np.ndarray | None = None, has_mesh: np.ndarray | None = None
    ) -> np.ndarray:
        """(N, C) float32, `batch_size` faces at a time, from uint8 crops (N,48,48) or points (N,478,3)
        (see as_crops, as_points). 3D models: rows whose `has_mesh` is False (FaceMesh found no face;
        without has_mesh, an all-zero row) get the training class prior; their points are not looked at."""
        if self.needs_mesh and points is None:
            raise ValueError(f"{self.name}: a {self.kind} model needs the faces' FaceMesh points")
        if not self.needs_mesh and crops is None:
            raise ValueError(f"{self.name}: an image model needs the 48x48 crops")
        if not self.needs_mesh:
            crops = as_crops(crops, self.name)
            return self._batched(len(crops), lambda s: self.proba_batch(crops=crops[s]))
        points, has_mesh = as_points(points, has_mesh, self.name)
        out = np.repeat(self.prior[None], len(points), axis=0)
        if has_mesh.any():
            meshed = points[has_mesh]
            out[has_mesh] = self._batched(len(meshed), lambda s: self.proba_batch(points=meshed[s]))
        return out

    def _batched(self, n: int, proba) -> np.ndarray:
        parts = [proba(slice(i, i + self.batch_size)) for i in range(0, n, self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.classes)), np.float32)
