"""shift_landmarks: the images of `shifts.splits` (PrivateTest; PublicTest too when choosing a
recipe) under every shift of `shifts.suite`
(fer3d.evaluation.shifts) → FaceMesh points found on each shifted image, with the landmarks
stage's settings → data/shift_landmarks.npz + metrics/shift_landmarks.json (faces found per shift).

Its own stage so that retraining a model does not run FaceMesh again on ~57,000 shifted images."""

import os
import sys
import time

import numpy as np

from fer3d import params, show_progress
from fer3d.config import Paths
from fer3d.evaluation import shifts
from fer3d.face3d import landmarks
from fer3d.io import load_npz, save_json, save_npz


def main() -> None:
    p, paths = params.load(), Paths()
    suite = shifts.parse_suite(params.get(p, "shifts.suite", list), "params.yaml: shifts.suite")
    splits = shifts.parse_splits(params.get(p, "shifts.splits", list), "params.yaml: shifts.splits")
    attempts = landmarks.Attempt.list_from_param(params.get(p, "landmarks.attempts", list))
    workers = params.positive(p, "landmarks.workers", int, allow_zero=True) or os.cpu_count()
    confidence = params.get(p, "landmarks.min_detection_confidence", float)
    mirror_average = params.get(p, "landmarks.mirror_average", bool)
    fer = load_npz(paths.fer2013)
    rows = np.flatnonzero(np.isin(fer["split"], list(splits.values())))
    crops = fer["images"][rows]
    start = time.perf_counter()
    # one pool over every shifted image: the workers start once
    shifted = np.concatenate([shift(crops, rows) for shift in suite])
    points, attempt_used = landmarks.extract(
        shifted,
        attempts,
        workers=workers,
        min_detection_confidence=confidence,
        progress=show_progress(),
        mirror_average=mirror_average,
    )
    seconds = time.perf_counter() - start
    shape = (len(suite), len(rows))
    found = (attempt_used >= 0).reshape(shape)
    save_npz(
        paths.shift_landmarks,
        shifts=np.array([s.name for s in suite]),
        splits=np.array(list(splits)),
        rows=rows,
        landmarks=points.astype(np.float16).reshape(*shape, *points.shape[1:]),  # as the landmarks stage
        found=found,
    )
    split = fer["split"][rows]
    rates = {
        s.name: {name: round(float(found[i, split == k].mean()), 5) for name, k in splits.items()}
        for i, s in enumerate(suite)
    }
    save_json(
        paths.stage_metrics("shift_landmarks"),
        {
            "images": int(found.size),
            "seconds": round(seconds, 1),
            "images_per_second": round(found.size / seconds, 1),
            "detection_rate": rates,
        },
    )
    print(f"shift_landmarks: {found.size:,} shifted images, faces found in {found.mean():.2%}, {seconds:.0f} s")


if __name__ == "__main__":
    try:
        main()
    except (params.ParamError, ValueError, FileNotFoundError) as e:
        sys.exit(f"shift_landmarks: {e}")
    except KeyboardInterrupt:
        print("shift_landmarks: interrupted; nothing written", file=sys.stderr)
        sys.exit(130)
