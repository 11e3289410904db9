"""PublicTest / PrivateTest accuracy of 3D model files, scored as the evaluate stage scores them
(Classifier.from_file, every face of the split, the training prior where FaceMesh found none)."""

import sys

import numpy as np

from fer3d.config import TEST, VAL
from fer3d.inference.classifier import Classifier
from fer3d.io import load_npz

fer, lm = load_npz("data/fer2013.npz"), load_npz("data/landmarks.npz")
for arg in sys.argv[1:]:
    name, path = arg.split("=", 1)
    c = Classifier.from_file(path)
    row = [name]
    for s in (VAL, TEST):
        rows = fer["split"] == s
        p = c.predict_proba(points=lm["landmarks"][rows].astype(np.float32), has_mesh=lm["found"][rows])
        row.append(f"{100 * float((p.argmax(1) == fer['label'][rows]).mean()):.2f}")
    print(" / ".join(row))
