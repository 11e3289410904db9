"""A landmarks.npz whose training rows take, with probability P (seeded), a shifted reading's points
instead of the plain ones, where FaceMesh found the face in both: python mix.py READINGS.npz OUT.npz P SEED"""

import sys

import numpy as np

from fer3d.io import load_npz, save_npz

readings, out, prob, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
lm, rr = load_npz("data/landmarks.npz"), load_npz(readings)
points, found = lm["landmarks"].copy(), lm["found"]
rng = np.random.default_rng(seed)
rows = rr["rows"]
k = len(rr["shifts"])
pick = rng.integers(0, k, len(rows))  # which shifted reading, if taken
take = (rng.random(len(rows)) < prob) & rr["found"][pick, np.arange(len(rows))] & found[rows]
points[rows[take]] = rr["landmarks"][pick[take], np.flatnonzero(take)]
save_npz(out, **{**lm, "landmarks": points})
print(f"{take.sum()} of {len(rows)} training rows take a shifted reading ({take.mean():.1%})")
