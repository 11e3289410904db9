"""What each kind of model sees, built from a face's raw data: the 48x48 uint8 crop (2D) or its
478 crop-frame FaceMesh points (3D). Training (fer3d.training.features) and every caller of a
model file (fer3d.inference.Classifier) build inputs with these functions, so a model always sees
its inputs made the same way. `stats` are what the model file keeps (normalisation, mean face,
mirror permutation, quantisation range, voxel grid)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

# the numpy part lives in face3d.point_features (the torch-free ONNX runtime uses it too); these
# names stay importable from here for the training code
from ..face3d.point_features import (  # noqa: F401
    landmark_rows,
    point_features,
    standardise_lengths,
    stored_lengths,
    voxel_rows,
)
from ..face3d.voxels import densify_torch
from .registry import INPUTS


def standardise_images(x: torch.Tensor, stats: dict) -> torch.Tensor:
    """uint8 (B,1,48,48) → standardised float."""
    return (x.float() / 255 - stats["mean"]) / stats["std"]


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
    if kind not in INPUTS:
        raise ValueError(f"input kind must be one of {INPUTS}, found {kind!r}")
    features = torch.from_numpy(point_features(kind, stats, edges, points))
    return densify_torch(features, stats["grid"]) if kind == "voxels" else features


def autocast(device: torch.device, precision: str):
    """A forward pass in `precision`: fp32, or bf16 autocast (the weights stay fp32). Training steps take
    the model's train.precision (fer3d.device.resolve_precision), scoring resolve_scoring_precision."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def tta_proba(
    model: torch.nn.Module,
    x: torch.Tensor,
    mirror: Callable | None,
    device: torch.device,
    shift_px: int = 0,
    *,
    precision: str,
) -> torch.Tensor:
    """Softmax probabilities of one batch in `precision`, averaged with the mirrored batch's when
    `mirror` is given, and over the image batch shifted `shift_px` up, down, left and right
    (shifted_views) too."""
    with autocast(device, precision):
        return mean_over_views(lambda v: model(v).float().softmax(1), scoring_views(x, mirror, shift_px))


def scoring_views(x: torch.Tensor, mirror: Callable | None, shift_px: int) -> list[torch.Tensor]:
    """The batch, its shifted views (image batches, `shift_px` > 0), then the mirror of each."""
    views = [x, *shifted_views(x, shift_px)] if shift_px else [x]
    return views + [mirror(v) for v in views] if mirror is not None else views


def mean_over_views(proba: Callable, views: list[torch.Tensor]) -> torch.Tensor:
    """The mean of proba(view), summed in order: one view is returned as it is, two give (p + q) / 2,
    the flip average's arithmetic since before the shifted views (the same bits, the same ONNX graph)."""
    p = proba(views[0])
    for v in views[1:]:
        p = p + proba(v)
    return p / len(views) if len(views) > 1 else p


def shifted_views(x: torch.Tensor, px: int) -> list[torch.Tensor]:
    """An image batch (B, 1, H, W) moved `px` up, down, left and right, the edges reflected (as
    training's random shifts pad them): the test-time views of a model file's `tta_shift`."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (px, px, px, px), mode="reflect")
    return [padded[..., px + dy : px + dy + h, px + dx : px + dx + w] for dy, dx in view_offsets(px)]


def view_offsets(px: int) -> tuple[tuple[int, int], ...]:
    """(dy, dx) of shifted_views' crops: view[y, x] = face[y + dy, x + dx], edges reflected."""
    return ((-px, 0), (px, 0), (0, -px), (0, px))
