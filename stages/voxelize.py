"""voxelize: landmarks → data/voxels.npz (one voxel index per point; densified on the fly)."""

import sys
import time

import numpy as np

from fer3d import params
from fer3d.config import TRAIN, Paths
from fer3d.face3d import geometry, voxels
from fer3d.io import load_npz, save_json, save_npz


def main() -> None:
    p = params.load()
    paths = Paths()
    grid = params.positive(p, "voxelize.grid", int)
    if not 4 <= grid <= 128:
        raise params.ParamError(f"params.yaml: voxelize.grid must be 4..128, found {grid}")
    align = params.get(p, "voxelize.align", str)
    if align not in geometry.ALIGNMENTS:
        raise params.ParamError(f"params.yaml: voxelize.align must be one of {geometry.ALIGNMENTS}, found {align!r}")
    fer = load_npz(paths.fer2013)
    lm = load_npz(paths.landmarks)
    topology = load_npz(paths.mesh_topology)
    start = time.perf_counter()
    found = lm["found"]
    points = geometry.normalise(lm["landmarks"], align, topology["mean_face"])
    extent = voxels.fit_extent(points[found & (fer["split"] == TRAIN)])
    indices = voxels.voxel_indices(points, grid, extent)
    indices[~found] = 0
    seconds = time.perf_counter() - start
    save_npz(paths.voxels, indices=indices, grid=np.int64(grid), extent=np.float32(extent), align=np.array(align))
    occupied = [len(np.unique(row)) for row in indices[found][:2000]]
    save_json(
        paths.stage_metrics("voxels"),
        {
            "grid": grid,
            "align": align,
            "extent": round(extent, 5),
            "faces": int(found.sum()),
            "occupied_voxels_per_face_mean": round(float(np.mean(occupied)), 1) if occupied else None,
            "seconds": round(seconds, 3),
            "faces_per_second": round(len(indices) / seconds, 1),
        },
    )
    print(f"voxelize: {len(indices):,} faces → {grid}³ grid ({align} alignment) in {seconds:.2f} s")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"voxelize: {e}")
