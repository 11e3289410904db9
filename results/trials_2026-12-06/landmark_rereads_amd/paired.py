"""Trial minus baseline on the same faces, plain and shifted (each face's mean over the suite), with
95% paired bootstrap intervals: python paired.py TRIAL=PATH BASE=PATH"""

import os
import sys

import numpy as np

from fer3d.config import TEST, VAL
from fer3d.evaluation.metrics import paired_difference
from fer3d.inference.classifier import Classifier
from fer3d.io import load_npz

fer, lm = load_npz("data/fer2013.npz"), load_npz("data/landmarks.npz")
sets = {
    "test": load_npz("data/shift_landmarks.npz"),
    "val": load_npz(os.environ.get("VAL_SHIFT_LANDMARKS", "shiftval/data/shift_landmarks.npz")),
}
(a_name, a_path), (b_name, b_path) = (x.split("=", 1) for x in sys.argv[1:3])
models = {a_name: Classifier.from_file(a_path), b_name: Classifier.from_file(b_path)}


def correct(c, key, s):
    rows = np.flatnonzero(fer["split"] == s)
    y = fer["label"][rows]
    plain = c.predict_proba(points=lm["landmarks"][rows].astype(np.float32), has_mesh=lm["found"][rows]).argmax(1) == y
    sh = sets[key]
    sel = fer["split"][sh["rows"]] == s
    shifted = np.mean(
        [
            c.predict_proba(points=sh["landmarks"][i][sel].astype(np.float32), has_mesh=sh["found"][i][sel]).argmax(1)
            == y
            for i in range(len(sh["shifts"]))
        ],
        0,
    )
    return plain, shifted


rng = np.random.default_rng(0)
for key, s in (("val", VAL), ("test", TEST)):
    (pa, sa), (pb, sb) = correct(models[a_name], key, s), correct(models[b_name], key, s)
    d = paired_difference(pa, pb)
    diff = sa - sb
    draws = rng.integers(0, len(diff), (1000, len(diff)))
    lo, hi = np.percentile(diff[draws].mean(1), [2.5, 97.5])
    low, high = d["interval_95"]
    print(
        f"{a_name} - {b_name} {key}: plain {100 * d['difference']:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]"
        f" | shifted {100 * diff.mean():+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]"
    )
