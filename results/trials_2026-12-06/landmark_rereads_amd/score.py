"""landmark_mlp files on plain and shifted PublicTest/PrivateTest (evaluate_shifts' way: the points
FaceMesh found on each shifted image, the prior where none): python score.py NAME=PATH ..."""

import json
import os
import sys

import numpy as np

from fer3d.config import TEST, VAL
from fer3d.inference.classifier import Classifier
from fer3d.io import load_npz

fer, lm = load_npz("data/fer2013.npz"), load_npz("data/landmarks.npz")
sets = {
    "test": load_npz("data/shift_landmarks.npz"),
    "val": load_npz(os.environ.get("VAL_SHIFT_LANDMARKS", "shiftval/data/shift_landmarks.npz")),
}
out = {}
for arg in sys.argv[1:]:
    name, path = arg.split("=", 1)
    c = Classifier.from_file(path)
    out[name] = {}
    for key, s in (("val", VAL), ("test", TEST)):
        rows = np.flatnonzero(fer["split"] == s)
        y = fer["label"][rows]
        p = c.predict_proba(points=lm["landmarks"][rows].astype(np.float32), has_mesh=lm["found"][rows])
        acc = {"plain": float((p.argmax(1) == y).mean())}
        sh = sets[key]
        assert np.array_equal(sh["rows"][fer["split"][sh["rows"]] == s], rows)
        sel = fer["split"][sh["rows"]] == s
        for i, nm in enumerate(sh["shifts"]):
            q = c.predict_proba(points=sh["landmarks"][i][sel].astype(np.float32), has_mesh=sh["found"][i][sel])
            acc[str(nm)] = float((q.argmax(1) == y).mean())
        acc["shifted"] = float(np.mean([v for k2, v in acc.items() if k2 != "plain"]))
        out[name][key] = acc
    print(
        name,
        " | ".join(
            f"{k}: plain {100 * a['plain']:.2f} shifted {100 * a['shifted']:.2f} "
            f"blur {100 * a['blur:1']:.2f} zoom.85 {100 * a['zoom:0.85']:.2f}"
            for k, a in out[name].items()
        ),
    )
with open("scores_" + "_".join(a.split("=")[0] for a in sys.argv[1:]) + ".json", "w") as f:
    json.dump(out, f, indent=1)
