"""Figures for the data stages on the full data (run after `dvc repro`): stage times, landmark
throughput and detection, voxelize vs the reference's per-point loop, and output sizes.
Usage: python bench/data_stages.py [--faces 2000]"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from fer3d.face3d import geometry, voxels
from fer3d.io import load_npz

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = [
    "data/fer2013.npz",
    "data/landmarks.npz",
    "data/voxels.npz",
    "data/mesh_topology.npz",
    "data/mesh_features.npz",
    "reports/meshes/samples.html",
    "reports/meshes/samples.png",
]


def reference_voxelize(points: np.ndarray, grid: int) -> np.ndarray:
    """The reference project's way: per face, per point, re-normalise each axis to the face's own
    min/max and set a voxel in a dense float64 cube, in Python loops."""
    cubes = np.zeros((len(points), grid, grid, grid))
    for n, face in enumerate(points):
        lo = [min(p[a] for p in face) for a in range(3)]
        hi = [max(p[a] for p in face) for a in range(3)]
        for p in face:
            idx = [int((p[a] - lo[a]) / ((hi[a] - lo[a]) or 1) * (grid - 1)) for a in range(3)]
            cubes[n, idx[0], idx[1], idx[2]] = 1.0
    return cubes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--faces", type=int, default=2000, help="faces for the reference-loop timing")
    args = ap.parse_args()
    lm = load_npz(ROOT / "data" / "landmarks.npz")
    topo = load_npz(ROOT / "data" / "mesh_topology.npz")
    pts = lm["landmarks"][lm["found"]].astype(np.float32)
    sample = pts[: args.faces]

    t = time.perf_counter()
    reference_voxelize(sample.tolist(), 24)
    loop_per_face = (time.perf_counter() - t) / len(sample)
    t = time.perf_counter()
    aligned = geometry.normalise(pts, "procrustes", topo["mean_face"])
    idx = voxels.voxel_indices(aligned, 24, voxels.fit_extent(aligned))
    ours_per_face = (time.perf_counter() - t) / len(pts)
    t = time.perf_counter()
    voxels.voxel_indices(geometry.normalise(pts, "center"), 24, 2.0)
    ours_noalign = (time.perf_counter() - t) / len(pts)

    print("| figure | value |\n|---|---|")
    for stage in ("data", "landmarks", "meshes", "voxels"):
        path = ROOT / "metrics" / f"{stage}.json"
        if path.exists():
            m = json.loads(path.read_text())
            print(f"| {stage} stage seconds (from metrics/{stage}.json) | {m.get('seconds')} |")
    lmj = json.loads((ROOT / "metrics" / "landmarks.json").read_text())
    print(f"| landmarks images/s ({lmj['workers']} workers) | {lmj['images_per_second']} |")
    print(f"| faces found | {lmj['all']['found']:,}/{lmj['all']['images']:,} = {100 * lmj['detection_rate']:.2f}% |")
    print(f"| reference per-point loop, per face | {loop_per_face * 1e3:.3f} ms |")
    for what, seconds in (("incl. Procrustes", ours_per_face), ("centre+scale only", ours_noalign)):
        speedup = loop_per_face / seconds
        print(f"| vectorised voxelize, {what}, per face | {seconds * 1e3:.4f} ms ({speedup:.0f}x faster) |")
    print(f"| voxel storage per face: reference dense float64 vs indices | {24**3 * 8:,} B vs {idx[0].nbytes} B |")
    total = 0
    for rel in OUTPUTS:
        size = (ROOT / rel).stat().st_size if (ROOT / rel).exists() else 0
        total += size
        print(f"| size of {rel} | {size / 1e6:.1f} MB |")
    print(f"| total data-stage outputs | {total / 1e6:.1f} MB |")


if __name__ == "__main__":
    main()
