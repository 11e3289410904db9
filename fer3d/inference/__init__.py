"""From model files to probabilities: one `Classifier` per model file, `Fusion` rows from
models/fusion.json, and a `Predictor` that runs a set of them (with FaceMesh for the 3D models)."""

from .classifier import Classifier, MeshSettings
from .fusion import Fusion, load_fusions
from .predictor import Predictor

__all__ = ["Classifier", "Fusion", "MeshSettings", "Predictor", "load_fusions"]
