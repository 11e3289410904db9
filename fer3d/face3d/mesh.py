"""The MediaPipe face-mesh topology (edges, true triangles, named regions) and per-face features
built on it (edge lengths)."""

from __future__ import annotations

from collections import Counter

import numpy as np

# Regions named after MediaPipe's connection sets; "left"/"right" are the subject's.
REGIONS = (
    "FACE_OVAL",
    "LIPS",
    "LEFT_EYE",
    "RIGHT_EYE",
    "LEFT_EYEBROW",
    "RIGHT_EYEBROW",
    "LEFT_IRIS",
    "RIGHT_IRIS",
    "NOSE",
)


def _connections(name: str) -> list[tuple[int, int]]:
    from mediapipe.python.solutions import face_mesh_connections as fmc

    return sorted({tuple(sorted(e)) for e in getattr(fmc, f"FACEMESH_{name}")})


def mesh_edges() -> np.ndarray:
    """Undirected edges (E,2), a < b, sorted: the tesselation's 1,322 plus the 8 iris-ring edges
    (the tesselation covers 468 points; the irises are only linked by their rings)."""
    edges = set(_connections("TESSELATION")) | set(_connections("IRISES"))
    return np.array(sorted(edges), np.int64)


def mesh_triangles(edges: np.ndarray) -> np.ndarray:
    """True triangles (F,3) of the tesselation. Every 3-cycle of the edge graph is a candidate; a
    cycle that is not a face ("separating triangle") shows as edges shared by 3 candidates, while
    a manifold mesh shares each edge between at most 2 faces, so those cycles are dropped."""
    neighbours: dict[int, set[int]] = {}
    for a, b in edges.tolist():
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    cycles = {tuple(sorted((a, b, c))) for a, b in edges.tolist() for c in neighbours[a] & neighbours[b]}
    while True:
        uses = Counter(e for t in cycles for e in ((t[0], t[1]), (t[0], t[2]), (t[1], t[2])))
        separating = [t for t in cycles if all(uses[e] > 2 for e in ((t[0], t[1]), (t[0], t[2]), (t[1], t[2])))]
        if not separating:
            break
        cycles -= set(separating)
    return np.array(sorted(cycles), np.int64)


def region_indices() -> dict[str, list[int]]:
    """Point indices of each named region (for colouring and reports)."""
    return {r.lower(): sorted({v for e in _connections(r) for v in e}) for r in REGIONS}


def edge_lengths(points: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Lengths (N,E) float32 of `edges` on faces (N,478,3)."""
    pts = np.asarray(points, np.float32)
    return np.linalg.norm(pts[:, edges[:, 0]] - pts[:, edges[:, 1]], axis=-1)


def quantize(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per-column affine quantisation to uint8 over [lo, hi] (values outside are clipped)."""
    span = np.where(hi > lo, hi - lo, 1)
    return np.clip(np.rint((values - lo) / span * 255), 0, 255).astype(np.uint8)


def dequantize(codes: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    span = np.where(hi > lo, hi - lo, 1)
    return (codes.astype(np.float32) / 255 * span + lo).astype(np.float32)
