"""Models by name (the registry), their nets, their inputs, and the model file format.

Importing this package registers every model, in this order: cnn, vgg, resnet, landmark_mlp,
landmark_cnn, distance_cnn, voxel_cnn, mesh_gnn."""

from . import image_nets, mesh_gnn, point_nets  # noqa: F401  (registers the models)
from .registry import CONTEXT_KEYS, FAMILIES, INPUTS, MODELS, ModelSpec, build_model, count_parameters, model_options

__all__ = [
    "CONTEXT_KEYS",
    "FAMILIES",
    "INPUTS",
    "MODELS",
    "ModelSpec",
    "build_model",
    "count_parameters",
    "model_options",
]
