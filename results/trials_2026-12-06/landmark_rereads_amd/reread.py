"""FaceMesh points of FER2013 training crops under shifts of the suite, read with the landmarks
stage's settings (params.yaml): python reread.py OUT.npz blur:1 [zoom:0.85 ...]"""

import os
import sys
import time

import numpy as np

from fer3d import params
from fer3d.config import TRAIN
from fer3d.evaluation import shifts
from fer3d.face3d import landmarks
from fer3d.io import load_npz, save_npz


def main():
    out, names = sys.argv[1], sys.argv[2:]
    p = params.load("params.yaml")
    suite = shifts.parse_suite(names)
    attempts = landmarks.Attempt.list_from_param(params.get(p, "landmarks.attempts", list))
    fer = load_npz("data/fer2013.npz")
    rows = np.flatnonzero(fer["split"] == TRAIN)
    crops = fer["images"][rows]
    start = time.perf_counter()
    points, used = landmarks.extract(
        np.concatenate([s(crops) for s in suite]),
        attempts,
        workers=os.cpu_count(),
        min_detection_confidence=params.get(p, "landmarks.min_detection_confidence", float),
        progress=False,
        mirror_average=params.get(p, "landmarks.mirror_average", bool),
    )
    shape = (len(suite), len(rows))
    found = (used >= 0).reshape(shape)
    save_npz(
        out,
        shifts=np.array(names),
        rows=rows,
        landmarks=points.astype(np.float16).reshape(*shape, *points.shape[1:]),
        found=found,
    )
    print(f"{found.size} images, found {found.mean(1)}, {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
