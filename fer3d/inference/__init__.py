"""From model files to probabilities: one `Classifier` per model file (torch) or `OnnxClassifier`
per exported .onnx file (onnxruntime, no torch), `Fusion` rows from models/fusion.json, and a
`Predictor` that runs a set of them (with FaceMesh for the 3D models).

Names are imported on first use, so the ONNX path (`fer3d.inference.onnx_runtime`, `Predictor` with
backend="onnx") never imports torch."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # also what tests/unit/test_dvc_yaml.py reads: a stage importing this package depends on all
    from .base import MeshSettings
    from .classifier import Classifier
    from .fusion import Fusion, load_fusions
    from .onnx_runtime import OnnxClassifier
    from .predictor import Predictor

_WHERE = {
    "Classifier": ".classifier",
    "MeshSettings": ".base",
    "Fusion": ".fusion",
    "load_fusions": ".fusion",
    "Predictor": ".predictor",
    "OnnxClassifier": ".onnx_runtime",
}

__all__ = ["Classifier", "Fusion", "MeshSettings", "OnnxClassifier", "Predictor", "load_fusions"]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name], __name__), name)
