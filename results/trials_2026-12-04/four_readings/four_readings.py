"""Trial: two more FaceMesh readings a face (the crop padded 24 px and upscaled x4, and its mirror),
averaged with the pipeline's two (default attempts, crop + mirror): four readings where all find a face.
Run in a trial folder: `cd <copy> && FER3D_ROOT=<copy> PYTHONPATH=/work/main python four_readings.py`,
then the meshes stage and `python -m stages.train landmark_mlp` with FER3D_ROOT=<copy>."""

import time

import numpy as np

from fer3d.face3d import landmarks
from fer3d.io import load_npz, save_npz


def main() -> None:
    fer = load_npz("/work/main/data/fer2013.npz")
    two = load_npz("/work/main/data/landmarks.npz")
    start = time.perf_counter()
    up, up_used = landmarks.extract(
        fer["images"],
        [landmarks.Attempt(24, "gray", 4, False)],
        workers=2,
        min_detection_confidence=0.3,
        progress=False,
        mirror_average=True,
    )
    print(f"x4 readings (crop + mirror) {time.perf_counter() - start:.1f} s")
    found_up = up_used >= 0
    points, found = two["landmarks"].astype(np.float32), two["found"]
    both = found & found_up
    gap = np.linalg.norm(points[both] - up[both], axis=-1)
    print(
        f"found two {found.mean():.4%}, x4 {found_up.mean():.4%}; "
        f"gap mean {gap.mean():.3f} px, median {np.median(gap):.3f}"
    )
    averaged = np.where(both[:, None, None], 0.5 * (points + up), np.where(found[:, None, None], points, up))
    save_npz(
        "data/landmarks.npz",
        landmarks=averaged.astype(np.float16),
        found=found | found_up,
        attempt=np.where(found, two["attempt"], np.where(found_up, 1, -1)).astype(np.int8),
    )


if __name__ == "__main__":
    main()
