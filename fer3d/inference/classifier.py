"""One trained model file → probabilities: `Classifier.from_file(path)`.

Everything the model needs comes from the file (fer3d.models.model_file): how to build its input
from a 48x48 crop or from the crop's FaceMesh points, the test-time flip, the class names, and the
training class prior it answers with for a face that has no mesh. The evaluate stage, `fer3d
predict`, Grad-CAM and the later service/export use this and nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import MAX_TTA_SHIFT
from ..device import resolve_device, resolve_scoring_precision
from ..models import inputs
from ..models.model_file import build_from_payload, read_model_file, trained_precision
from .base import DEFAULT_BATCH_SIZE, ClassifierBase, MeshSettings

__all__ = ["DEFAULT_BATCH_SIZE", "Classifier", "MeshSettings"]


class Classifier(ClassifierBase):
    """A model and everything it needs to turn faces into (N, C) float32 probabilities."""

    def __init__(
        self,
        payload: dict[str, Any],
        device: str | torch.device = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        tta_flip: bool | None = None,
        source: str = "",
        precision: str = "auto",
    ):
        self.name: str = payload["name"]
        self.family: str = payload["family"]
        self.kind: str = payload["input"]
        self.classes: list[str] = list(payload["classes"])
        self.stats: dict = payload["input_stats"]
        self.prior = np.asarray(payload["prior"], np.float32)
        self.tta_flip = bool(payload["tta_flip"]) if tta_flip is None else bool(tta_flip)
        self.tta_shift = int(payload.get("tta_shift", 0))  # image models: shifted views too (files before it: none)
        if self.tta_shift and (self.kind != "image" or not 0 < self.tta_shift <= MAX_TTA_SHIFT):
            raise ValueError(
                f"{source or self.name}: tta_shift must be 1-{MAX_TTA_SHIFT} px on an image model; this "
                f"{self.kind} model's file has {self.tta_shift}"
            )
        self.training: dict = payload.get("training") or {}
        self.mesh_settings = MeshSettings.from_payload(payload["landmarks"]) if payload.get("landmarks") else None
        self.device = resolve_device(str(device), where="device")  # a clear error for cuda on a CPU-only machine
        # auto: bf16 where the device runs it fast and the model trained in it (fer3d.device)
        self.precision = resolve_scoring_precision(precision, self.device, trained_precision(payload))
        self.batch_size = int(batch_size)
        self.source = source
        self.model = build_from_payload(payload, self.device)
        if self.kind == "image":
            # as in training: channels-last convolutions run 1.4-1.7x faster on CPU (README, "ONNX
            # export and inference speed"); the weights' values and the input stay what they are
            self.model.to(memory_format=torch.channels_last)
        edges = self.stats.get("edges", payload["context"].get("edges"))
        self.edges = None if edges is None else np.asarray(edges)
        if self.kind == "distances" and self.edges is None:
            raise ValueError(f"{source or self.name}: a distances model file must keep the mesh edges")
        self.check_file()
        try:
            self.mirror = inputs.mirror_function(self.kind, self.stats, self.edges)
        except KeyError as e:
            where = source or self.name
            raise ValueError(f"{where}: the model file's input_stats lack {e}, which its flip needs") from None

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        tta_flip: bool | None = None,
        precision: str = "auto",
    ) -> Classifier:
        """tta_flip None: as the model was trained and evaluated; precision auto: as the pipeline scores it."""
        return cls(read_model_file(path), device, batch_size, tta_flip, source=str(path), precision=precision)

    def __repr__(self) -> str:
        return (
            f"Classifier({self.name!r}, {self.family}, input={self.kind}, tta_flip={self.tta_flip}, "
            f"precision={self.precision})"
        )

    def encode(self, crops: np.ndarray | None = None, points: np.ndarray | None = None) -> torch.Tensor:
        """The model-input batch of 48x48 uint8 crops (2D) or crop-frame points (3D)."""
        if self.needs_mesh and points is None:
            raise ValueError(f"{self.name}: a {self.kind} model needs the faces' FaceMesh points")
        if not self.needs_mesh and crops is None:
            raise ValueError(f"{self.name}: an image model needs the 48x48 crops")
        return inputs.model_input(self.kind, self.stats, self.edges, crops=crops, points=points)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> np.ndarray:
        """Probabilities of one model-input batch, flip-averaged when tta_flip, over the shifted
        views too when the file has tta_shift."""
        self.model.eval()
        mirror = self.mirror if self.tta_flip else None
        proba = inputs.tta_proba(
            self.model, x.to(self.device), mirror, self.device, self.tta_shift, precision=self.precision
        )
        return proba.cpu().numpy()

    def proba_batch(self, crops: np.ndarray | None = None, points: np.ndarray | None = None) -> np.ndarray:
        return self.forward(self.encode(crops=crops, points=points))
