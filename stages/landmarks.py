"""landmarks: data/fer2013.npz → data/landmarks.npz (478×3 per image, found mask) + detection rates."""

import os
import sys
import time

import numpy as np

from fer3d import params, show_progress
from fer3d.config import Paths, class_names
from fer3d.face3d import landmarks
from fer3d.io import load_npz, save_json, save_npz


def main() -> None:
    p = params.load()
    paths = Paths()
    attempts = landmarks.Attempt.list_from_param(params.get(p, "landmarks.attempts", list))
    workers = params.positive(p, "landmarks.workers", int, allow_zero=True) or os.cpu_count()
    confidence = params.get(p, "landmarks.min_detection_confidence", float)
    mirror_average = params.get(p, "landmarks.mirror_average", bool)
    fer = load_npz(paths.fer2013)
    start = time.perf_counter()
    points, attempt_used = landmarks.extract(
        fer["images"],
        attempts,
        workers=workers,
        min_detection_confidence=confidence,
        progress=show_progress(),
        mirror_average=mirror_average,
    )
    seconds = time.perf_counter() - start
    found = attempt_used >= 0
    # float16 keeps 0.03 px at the crop's far edge, well inside FaceMesh's own error, at half the size
    save_npz(paths.landmarks, landmarks=points.astype(np.float16), found=found, attempt=attempt_used)
    report = landmarks.detection_report(found, fer["label"], fer["split"], attempt_used, attempts, class_names(fer))
    save_json(
        paths.stage_metrics("landmarks"),
        {
            "detection_rate": report["all"]["rate"],
            "images": len(found),
            "workers": workers,
            "seconds": round(seconds, 1),
            "images_per_second": round(len(found) / seconds, 1),
            **report,
        },
    )
    print(
        f"landmarks: faces found in {found.sum():,}/{len(found):,} images ({found.mean():.2%}), "
        f"{len(found) / seconds:.0f} images/s on {workers} workers"
    )


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"landmarks: {e}")
    except KeyboardInterrupt:
        # the workers are stopped and nothing was written (outputs are saved only at the end)
        print("landmarks: interrupted; nothing written, run `dvc repro` again to start over", file=sys.stderr)
        sys.exit(130)
