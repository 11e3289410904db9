"""What a 3D model is fed, built from a face's 478 crop-frame FaceMesh points, in numpy only: the
Procrustes-aligned points, the stored edge lengths, the voxel indices. The torch models
(fer3d.models.inputs) and the torch-free ONNX runtime (fer3d.inference.onnx_runtime) both build
their inputs here, so an exported model sees the floats its torch original sees. `stats` are what
the model file keeps (mean face, edge-length quantisation range and statistics, voxel grid)."""

from __future__ import annotations

import numpy as np

from . import geometry, mesh
from .voxels import voxel_indices

POINT_KINDS = ("landmarks", "distances", "voxels")


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


def point_features(kind: str, stats: dict, edges: np.ndarray | None, points: np.ndarray) -> np.ndarray:
    """Crop-frame landmarks (B,478,3) → landmarks: aligned points (B,478,3) float32; distances:
    standardised stored edge lengths (B,E) float32; voxels: flat voxel indices (B,478) int64."""
    pts = np.asarray(points, np.float32)
    if kind == "landmarks":
        return landmark_rows(pts, stats)
    if kind == "distances":
        if edges is None:
            raise ValueError("a distances model needs the mesh edges of its model file")
        return standardise_lengths(stored_lengths(pts, np.asarray(edges), stats), stats)
    if kind == "voxels":
        return voxel_rows(pts, stats).astype(np.int64)
    raise ValueError(f"point input kind must be one of {POINT_KINDS}, found {kind!r}")
