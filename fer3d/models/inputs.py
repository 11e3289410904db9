"""What each kind of model sees, built from a face's raw data: the 48x48 uint8 crop (2D) or its
478 crop-frame FaceMesh points (3D). Training (fer3d.training.features) and every caller of a
model file (fer3d.inference.Classifier) build inputs with these functions, so a model always sees
its inputs made the same way. `stats` are what the model file keeps (normalisation, mean face,
mirror permutation, quantisation range, voxel grid)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..face3d import geometry, mesh
from ..face3d.voxels import densify_torch, voxel_indices
from .registry import INPUTS


def standardise_images(x: torch.Tensor, stats: dict) -> torch.Tensor:
    """uint8 (B,1,48,48) → standardised float."""
    return (x.float() / 255 - stats["mean"]) / stats["std"]


def landmark_rows(points: np.ndarray, stats: dict) -> np.ndarray:
    """Crop-frame landmarks (N,478,3) → Procrustes-aligned to the training mean face."""
    return geometry.procrustes_align(points, np.asarray(stats["mean_face"], np.float32))


def standardise_lengths(lengths: np.ndarray, stats: dict) -> np.ndarray:
    return ((lengths - np.asarray(stats["length_mean"])) / np.asarray(stats["length_std"])).astype(np.float32)


def stored_lengths(points: np.ndarray, edges: np.ndarray, stats: dict) -> np.ndarray:
    """Edge lengths of the unit-RMS faces as the meshes stage stores them: through its uint8
    per-edge codes over the training range (exact lengths would shift probabilities by ~0.02)."""
    lo = np.asarray(stats["edge_length_lo"], np.float32)
    hi = np.asarray(stats["edge_length_hi"], np.float32)
    lengths = mesh.edge_lengths(geometry.center_scale(points), edges)
    return mesh.dequantize(mesh.quantize(lengths, lo, hi), lo, hi)


def voxel_rows(points: np.ndarray, stats: dict) -> np.ndarray:
    """Crop-frame landmarks → one flat voxel index per point, as the voxelize stage makes them."""
    aligned = geometry.normalise(points, stats["align"], np.asarray(stats["mean_face"], np.float32))
    return voxel_indices(aligned, stats["grid"], stats["extent"])


# ------------------------------------------------------------------ left↔right mirrors


def flip_images(x: torch.Tensor) -> torch.Tensor:
    """Mirror images left-right: (B, C, H, W) -> same shape."""
    return x.flip(-1)


def mirror_landmarks(x: torch.Tensor, mirror_perm: torch.Tensor) -> torch.Tensor:
    """Mirror faces left-right: x -> -x, then point i takes the place of point mirror_perm[i]
    (so the mirrored left eye becomes the right eye). (B, N, 3) -> same shape."""
    perm = mirror_perm.to(x.device)
    sign = torch.tensor([-1.0, 1.0, 1.0], dtype=x.dtype, device=x.device)
    return x[:, perm] * sign


def mirror_edge_permutation(edges: np.ndarray, point_perm: np.ndarray) -> np.ndarray:
    """For each edge, the edge it becomes on the mirrored face (itself if the mirror image of the
    edge is not a mesh edge: MediaPipe's triangulation is not perfectly symmetric)."""
    lookup = {tuple(e): i for i, e in enumerate(edges.tolist())}
    mirrored = np.sort(point_perm[edges], axis=1)
    return np.array([lookup.get(tuple(e), i) for i, e in enumerate(mirrored.tolist())], np.int64)


def flip_voxels(x: torch.Tensor) -> torch.Tensor:
    return x.flip(2)  # the grid's first axis is x, centred on the face


def mirror_function(kind: str, stats: dict, edges: np.ndarray | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The left↔right mirror of a model-input batch of `kind` (for test-time flip averaging)."""
    if kind == "image":
        return flip_images
    if kind == "voxels":
        return flip_voxels
    perm = torch.as_tensor(np.asarray(stats["mirror_perm"]), dtype=torch.long)
    if kind == "landmarks":
        return lambda x: mirror_landmarks(x, perm)
    if kind == "distances":
        edge_perm = torch.from_numpy(mirror_edge_permutation(np.asarray(edges), np.asarray(stats["mirror_perm"])))
        return lambda x: x[:, edge_perm]
    raise ValueError(f"input kind must be one of {INPUTS}, found {kind!r}")


# ------------------------------------------------------------------ from raw data to a batch


def model_input(
    kind: str, stats: dict, edges: np.ndarray | None, crops: np.ndarray | None = None, points: np.ndarray | None = None
) -> torch.Tensor:
    """The batch a model of input `kind` takes, from 48x48 uint8 crops (B,48,48) or crop-frame
    landmarks (B,478,3)."""
    if kind == "image":
        return standardise_images(torch.from_numpy(np.asarray(crops, np.uint8)).unsqueeze(1), stats)
    pts = np.asarray(points, np.float32)
    if kind == "landmarks":
        return torch.from_numpy(landmark_rows(pts, stats))
    if kind == "distances":
        return torch.from_numpy(standardise_lengths(stored_lengths(pts, np.asarray(edges), stats), stats))
    if kind == "voxels":
        return densify_torch(torch.from_numpy(voxel_rows(pts, stats).astype(np.int64)), stats["grid"])
    raise ValueError(f"input kind must be one of {INPUTS}, found {kind!r}")


def autocast(device: torch.device):
    # bf16 autocast on GPU (no loss scaling needed); full fp32 on CPU, where it is faster anyway
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def tta_proba(model: torch.nn.Module, x: torch.Tensor, mirror: Callable | None, device: torch.device) -> torch.Tensor:
    """Softmax probabilities of one batch, averaged with the mirrored batch's when `mirror` is given."""
    with autocast(device):
        p = model(x).float().softmax(1)
        if mirror is not None:
            p = (p + model(mirror(x)).float().softmax(1)) / 2
    return p
