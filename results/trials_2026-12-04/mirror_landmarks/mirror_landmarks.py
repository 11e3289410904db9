"""Trial of 2026-12-04 night (issue 13): FaceMesh on the mirrored crops too, mirrored back and
averaged with the committed (one-reading) landmarks; what `landmarks.mirror_average` now does inside
the landmarks stage. Run in a trial folder (params.yaml copy, data/fer2013.npz linked):

    cd <copy> && FER3D_ROOT=<copy> PYTHONPATH=/work/main python mirror_landmarks.py

then `python -m stages.meshes` and `python -m stages.train landmark_mlp` with FER3D_ROOT=<copy>.
As run, except that the mirroring is now fer3d.face3d.landmarks.mirror_back (the same permutation the
meshes stage had stored, checked equal) and the stage averages before rounding to float16."""

import time

import numpy as np

from fer3d import params
from fer3d.face3d import landmarks
from fer3d.io import load_npz, save_npz

COMMITTED = "/work/main/data"


def main() -> None:
    p = params.load()
    attempts = landmarks.Attempt.list_from_param(params.get(p, "landmarks.attempts", list))
    fer = load_npz(f"{COMMITTED}/fer2013.npz")
    plain = load_npz(f"{COMMITTED}/landmarks.npz")
    start = time.perf_counter()
    mirrored, mirrored_used = landmarks.extract(
        np.ascontiguousarray(fer["images"][:, :, ::-1]),
        attempts,
        workers=2,
        min_detection_confidence=0.3,
        progress=False,
    )
    print(f"mirrored pass {time.perf_counter() - start:.1f} s")
    found_mirrored = mirrored_used >= 0
    back = landmarks.mirror_back(mirrored, 48)
    points, found_plain = plain["landmarks"].astype(np.float32), plain["found"]
    both = found_plain & found_mirrored
    averaged = np.where(both[:, None, None], 0.5 * (points + back), np.where(found_plain[:, None, None], points, back))
    found = found_plain | found_mirrored
    gap = np.linalg.norm(points[both] - back[both], axis=-1)
    print(
        f"found plain {found_plain.mean():.4%}, mirrored {found_mirrored.mean():.4%}, union {found.mean():.4%}; "
        f"plain vs mirrored-back: mean {gap.mean():.3f} px, median {np.median(gap):.3f}, "
        f"p90 {np.quantile(gap, 0.9):.3f}"
    )
    attempt = np.where(found_plain, plain["attempt"], np.where(found_mirrored, mirrored_used, -1)).astype(np.int8)
    save_npz("data/landmarks.npz", landmarks=averaged.astype(np.float16), found=found, attempt=attempt)


if __name__ == "__main__":
    main()
