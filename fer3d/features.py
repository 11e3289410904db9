"""What each kind of model sees: one `FeatureSet` per input kind (image, landmarks, distances,
voxels) over all FER2013 rows, built from the stage outputs, with the same three operations for
all of them so one training loop serves every model: `batch` (stored rows → model input),
`augment` (training-time) and `mirror` (left↔right, for test-time averaging)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import geometry, mesh
from .io import load_npz
from .voxels import densify_torch, voxel_indices

INPUT_KINDS = ("image", "landmarks", "distances", "voxels")


@dataclass
class FeatureSet:
    kind: str
    rows: torch.Tensor  # stored form of every row (uint8 images, float landmarks, …), CPU
    label: np.ndarray  # int64 (N,)
    split: np.ndarray  # uint8 (N,) index into fer3d.SPLITS
    usable: np.ndarray  # bool (N,): the model can score this row (3D: a face was found)
    stats: dict = field(default_factory=dict)  # what the model file must keep to rebuild inputs
    context: dict = field(default_factory=dict)  # shape facts the model builder needs
    _to_model: Callable[[torch.Tensor], torch.Tensor] = lambda x: x
    _mirror: Callable[[torch.Tensor], torch.Tensor] = lambda x: x
    augmenter: Callable | None = None

    def batch(self, index: torch.Tensor | np.ndarray, device: torch.device) -> torch.Tensor:
        return self._to_model(self.rows[torch.as_tensor(index)].to(device, non_blocking=True))

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.augmenter(x, generator) if self.augmenter is not None else x

    def mirror(self, x: torch.Tensor) -> torch.Tensor:
        return self._mirror(x)

    def indices(self, split: int, usable_only: bool = True) -> np.ndarray:
        mask = self.split == split
        return np.flatnonzero(mask & self.usable if usable_only else mask)


def load(kind: str, root: Path, augment_options: dict | None = None) -> FeatureSet:
    """Build the FeatureSet of `kind` from the stage outputs under root/data."""
    from . import augment

    if kind not in INPUT_KINDS:
        raise ValueError(f"input kind must be one of {INPUT_KINDS}, found {kind!r}")
    fer = load_npz(root / "data" / "fer2013.npz")
    label, split = fer["label"].astype(np.int64), fer["split"]
    opts = augment_options or {}
    if kind == "image":
        train = fer["images"][split == 0].astype(np.float32) / 255
        stats = {"mean": float(train.mean()), "std": float(train.std())}
        images = torch.from_numpy(fer["images"]).unsqueeze(1)  # (N,1,48,48) uint8: 4x smaller than float
        return FeatureSet(kind, images, label, split, np.ones(len(label), bool), stats, {},
                          lambda x: standardise_images(x, stats), augment.flip_images, augment.ImageAugment(**opts))

    lm = load_npz(root / "data" / "landmarks.npz")
    topology = load_npz(root / "data" / "mesh_topology.npz")
    found = lm["found"]
    perm = torch.from_numpy(topology["mirror_perm"])
    stats = {"mean_face": topology["mean_face"].tolist(), "mirror_perm": topology["mirror_perm"].tolist()}
    context = {"num_points": int(lm["landmarks"].shape[1]), "edges": torch.from_numpy(topology["edges"]),
               "num_edges": len(topology["edges"])}
    points = lm["landmarks"].astype(np.float32)
    if kind == "landmarks":
        aligned = landmark_rows(points, stats)
        aligned[~found] = 0
        return FeatureSet(kind, torch.from_numpy(aligned), label, split, found, stats, context,
                          _mirror=lambda x: augment.mirror_landmarks(x, perm),
                          augmenter=augment.LandmarkAugment(perm, **opts))
    if kind == "distances":
        # the meshes stage's stored lengths (uint8 codes, error <= 0.001 in the unit-RMS frame)
        feats = load_npz(root / "data" / "mesh_features.npz")
        lengths = mesh.dequantize(feats["edge_length_codes"], feats["edge_length_lo"], feats["edge_length_hi"])
        train = lengths[found & (split == 0)]
        stats.update(length_mean=train.mean(0).tolist(), length_std=(train.std(0) + 1e-6).tolist())
        standardised = standardise_lengths(lengths, stats)
        standardised[~found] = 0
        edge_perm = torch.from_numpy(mirror_edge_permutation(topology["edges"], topology["mirror_perm"]))
        return FeatureSet(kind, torch.from_numpy(standardised), label, split, found, stats, context,
                          _mirror=lambda x: x[:, edge_perm], augmenter=DistanceAugment(edge_perm, **opts))
    vox = load_npz(root / "data" / "voxels.npz")
    stats.update(grid=int(vox["grid"]), extent=float(vox["extent"]), align=str(vox["align"]))
    context["grid"] = stats["grid"]
    return FeatureSet(kind, torch.from_numpy(vox["indices"].astype(np.int64)), label, split, found, stats, context,
                      _to_model=lambda x: densify_torch(x, stats["grid"]),
                      _mirror=lambda x: x.flip(2),  # the grid's first axis is x, centred on the face
                      augmenter=VoxelAugment(**opts))


# ------------------------------------------------------------------ inputs from raw data
# Shared by training (via `load`) and by prediction on new photos (fer3d.predict), so a model
# always sees its inputs built the same way; `stats` come from the model file.

def standardise_images(x: torch.Tensor, stats: dict) -> torch.Tensor:
    """uint8 (B,1,48,48) → standardised float."""
    return (x.float() / 255 - stats["mean"]) / stats["std"]


def landmark_rows(points: np.ndarray, stats: dict) -> np.ndarray:
    """Crop-frame landmarks (N,478,3) → Procrustes-aligned to the training mean face."""
    return geometry.procrustes_align(points, np.asarray(stats["mean_face"], np.float32))


def standardise_lengths(lengths: np.ndarray, stats: dict) -> np.ndarray:
    return ((lengths - np.asarray(stats["length_mean"])) / np.asarray(stats["length_std"])).astype(np.float32)


def model_input(kind: str, stats: dict, context: dict, images: np.ndarray | None = None,
                points: np.ndarray | None = None) -> torch.Tensor:
    """The batch a model of input `kind` takes, from 48x48 uint8 crops or crop-frame landmarks."""
    if kind == "image":
        return standardise_images(torch.from_numpy(np.asarray(images, np.uint8)).unsqueeze(1), stats)
    pts = np.asarray(points, np.float32)
    if kind == "landmarks":
        return torch.from_numpy(landmark_rows(pts, stats))
    if kind == "distances":
        edges = np.asarray(context["edges"])
        return torch.from_numpy(standardise_lengths(mesh.edge_lengths(geometry.center_scale(pts), edges), stats))
    if kind == "voxels":
        aligned = geometry.normalise(pts, stats["align"], np.asarray(stats["mean_face"], np.float32))
        return densify_torch(torch.from_numpy(voxel_indices(aligned, stats["grid"], stats["extent"]).astype(np.int64)),
                             stats["grid"])
    raise ValueError(f"input kind must be one of {INPUT_KINDS}, found {kind!r}")


def mirror_edge_permutation(edges: np.ndarray, point_perm: np.ndarray) -> np.ndarray:
    """For each edge, the edge it becomes on the mirrored face (itself if the mirror image of the
    edge is not a mesh edge: MediaPipe's triangulation is not perfectly symmetric)."""
    lookup = {tuple(e): i for i, e in enumerate(edges.tolist())}
    mirrored = np.sort(point_perm[edges], axis=1)
    return np.array([lookup.get(tuple(e), i) for i, e in enumerate(mirrored.tolist())], np.int64)


class DistanceAugment:
    """Mirror (edge permutation) and multiplicative jitter of standardised edge lengths."""

    def __init__(self, edge_perm: torch.Tensor, flip: bool = True, jitter: float = 0.05, **_: object):
        self.edge_perm, self.flip, self.jitter = edge_perm, flip, jitter

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.flip:
            swap = torch.rand(len(x), generator=generator) < 0.5
            x = torch.where(swap.to(x.device)[:, None], x[:, self.edge_perm.to(x.device)], x)
        if self.jitter:
            x = x + self.jitter * torch.randn(x.shape, generator=generator).to(x.device)
        return x


class VoxelAugment:
    """Mirror along x and shift by up to `shift` voxels (dense grids, after densifying)."""

    def __init__(self, flip: bool = True, shift: int = 1, **_: object):
        self.flip, self.shift = flip, shift

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.flip:
            swap = torch.rand(len(x), generator=generator) < 0.5
            x = torch.where(swap.to(x.device)[:, None, None, None, None], x.flip(2), x)
        if self.shift:
            s = self.shift
            dx, dy, dz = torch.randint(-s, s + 1, (3,), generator=generator).tolist()
            x = torch.roll(x, shifts=(dx, dy, dz), dims=(2, 3, 4))
        return x
