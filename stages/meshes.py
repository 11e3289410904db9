"""meshes: landmarks → data/mesh_topology.npz (edges, true triangles, mean face, mirror permutation),
data/mesh_features.npz (per-image edge lengths) and sample renders in reports/meshes/."""

import sys
import time

import numpy as np

from fer3d import params
from fer3d.config import TRAIN, Paths, class_names
from fer3d.face3d import geometry, mesh, viewer
from fer3d.io import load_npz, save_json, save_npz


def main() -> None:
    p, paths = params.load(), Paths()
    samples = params.positive(p, "meshes.samples", int, allow_zero=True)
    fer, lm = load_npz(paths.fer2013), load_npz(paths.landmarks)
    start = time.perf_counter()
    points, found = lm["landmarks"].astype(np.float32), lm["found"]
    train_found = found & (fer["split"] == TRAIN)
    if not train_found.any():
        raise ValueError(f"{paths.landmarks}: no face was found in the training split; nothing to build a mesh from")
    edges, triangles, mean_face, mirror = build_topology(paths, points[train_found])
    lengths, error = save_edge_lengths(paths, points, found, train_found, edges)
    render_samples(paths, fer, points, train_found, mean_face, triangles, samples)
    save_json(
        paths.stage_metrics("meshes"),
        {
            "edges": len(edges),
            "triangles": len(triangles),
            "mirror_pairs": int((mirror != np.arange(len(mirror))).sum() // 2),
            "faces": int(found.sum()),
            "edge_length_quantisation_max_error": round(float(error.max()), 5) if error.size else None,
            "edge_length_mean": round(float(lengths[found].mean()), 5) if found.any() else None,
            "seconds": round(time.perf_counter() - start, 2),
        },
    )
    print(f"meshes: {len(edges)} edges, {len(triangles)} triangles, edge lengths for {found.sum():,} faces")


def build_topology(paths: Paths, train_points: np.ndarray):
    """Edges, true triangles, the Procrustes mean training face and its mirror permutation."""
    edges = mesh.mesh_edges()
    triangles = mesh.mesh_triangles(edges[edges.max(1) < 468])  # the tesselation; irises are rings only
    mean_face = geometry.mean_face(train_points)
    mirror = geometry.mirror_permutation(mean_face)
    regions = mesh.region_indices()
    save_npz(
        paths.mesh_topology,
        edges=edges,
        triangles=triangles,
        mean_face=mean_face,
        mirror_perm=mirror,
        **{f"region_{k}": np.array(v, np.int64) for k, v in regions.items()},
    )
    return edges, triangles, mean_face, mirror


def save_edge_lengths(paths: Paths, points, found, train_found, edges) -> tuple[np.ndarray, np.ndarray]:
    """Edge lengths of faces scaled to unit RMS radius (rotation does not change lengths), stored as
    uint8 over each edge's training range: 1/4 the size of float32 (README: quantisation error).
    Returns the exact lengths and the quantisation error of the found faces."""
    lengths = mesh.edge_lengths(geometry.center_scale(points), edges)
    lo = np.quantile(lengths[train_found], 0.001, axis=0).astype(np.float32)
    hi = np.quantile(lengths[train_found], 0.999, axis=0).astype(np.float32)
    codes = mesh.quantize(lengths, lo, hi)
    codes[~found] = 0
    error = np.abs(mesh.dequantize(codes[found], lo, hi) - np.clip(lengths[found], lo, hi))
    save_npz(paths.mesh_features, edge_length_codes=codes, edge_length_lo=lo, edge_length_hi=hi)
    return lengths, error


def render_samples(paths: Paths, fer, points, train_found, mean_face, triangles, samples: int) -> None:
    """A few faces for eyes: one per class where possible, coloured by displacement from the mean face."""
    picks = [
        int(np.flatnonzero(train_found & (fer["label"] == c))[0])
        for c in range(len(class_names(fer)))
        if (train_found & (fer["label"] == c)).any()
    ][:samples]
    if not picks:
        return
    aligned = geometry.procrustes_align(points[picks], mean_face)
    displacement = np.linalg.norm(aligned - mean_face, axis=-1)
    faces = [
        (points[i], d, f"row {int(fer['row'][i])}: {class_names(fer)[fer['label'][i]]}")
        for i, d in zip(picks, displacement)
    ]
    label = "distance from the mean training face (unit-RMS frame)"
    viewer.mesh_html(paths.mesh_samples / "samples.html", faces, triangles, value_label=label)
    images = [fer["images"][i] for i in picks]
    viewer.mesh_png(paths.mesh_samples / "samples.png", faces, triangles, images=images, value_label=label)


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"meshes: {e}")
