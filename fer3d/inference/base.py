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

    def check_prior(self) -> None:
        if len(self.prior) != len(self.classes):
            raise ValueError(
                f"{self.source or self.name}: prior has {len(self.prior)} classes, the model {len(self.classes)}"
            )

    def proba_batch(self, crops: np.ndarray | None = None, points: np.ndarray | None = None) -> np.ndarray:
        """(B, C) float32 of one batch of crops (2D) or crop-frame points (3D)."""
        raise NotImplementedError

    def predict_proba(
        self, crops: np.ndarray | None = None, points: np.ndarray | None = None, has_mesh: np.ndarray | None = None
    ) -> np.ndarray:
        """(N, C) float32, `batch_size` faces at a time. 3D models: rows whose `has_mesh` is False
        (FaceMesh found no face) get the training class prior; their points are not looked at."""
        if self.needs_mesh and points is None:
            raise ValueError(f"{self.name}: a {self.kind} model needs the faces' FaceMesh points")
        if not self.needs_mesh and crops is None:
            raise ValueError(f"{self.name}: an image model needs the 48x48 crops")
        if not self.needs_mesh:
            crops = np.asarray(crops)
            return self._batched(len(crops), lambda s: self.proba_batch(crops=crops[s]))
        points = np.asarray(points)
        has_mesh = np.ones(len(points), bool) if has_mesh is None else np.asarray(has_mesh, bool)
        out = np.repeat(self.prior[None], len(points), axis=0)
        if has_mesh.any():
            meshed = points[has_mesh]
            out[has_mesh] = self._batched(len(meshed), lambda s: self.proba_batch(points=meshed[s]))
        return out

    def _batched(self, n: int, proba) -> np.ndarray:
        parts = [proba(slice(i, i + self.batch_size)) for i in range(0, n, self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.classes)), np.float32)
