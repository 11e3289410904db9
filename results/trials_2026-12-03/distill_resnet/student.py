"""Distillation trial (issue 13, 2026-12-03), step 2: the train stage for resnet with the teacher's
targets (teacher.npz beside this script) as its soft labels, in a project copy whose params.yaml has
`soft_labels: true` in models.resnet (params.diff):

    FER3D_ROOT=<copy> python results/trials_2026-12-03/distill_resnet/student.py     # from the repo root
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, ".")
import stages.train
from fer3d.data import labels

TEACHER = np.load(Path(__file__).with_name("teacher.npz"))["soft"]
load_labels = labels.load


def with_teacher(paths, name: str) -> labels.Labels:
    """The FER2013 labels with the teacher's distributions as their soft targets."""
    kept = load_labels(paths, name)
    if name != "fer2013" or TEACHER.shape != kept.soft.shape:
        raise SystemExit(f"the teacher has {TEACHER.shape} targets, labels {name!r} want {kept.soft.shape}")
    return labels.Labels(kept.name, kept.classes, kept.label, TEACHER)


if __name__ == "__main__":
    labels.load = with_teacher
    stages.train.main("resnet")
