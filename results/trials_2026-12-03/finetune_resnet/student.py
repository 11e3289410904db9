"""Trial (issue 13, 2026-12-03 session 16): the committed resnet fine-tuned on the full teacher's targets
(../distill_resnet/teacher.py's teacher.npz, copied beside this script): the train stage for resnet,
started from models/resnet.pt's weights, in a project copy whose params.yaml is params.diff's (10
epochs, lr 5e-4, `soft_labels: true`):

    FER3D_ROOT=<copy> python results/trials_2026-12-03/finetune_resnet/student.py   # from the repo root
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, ".")
import stages.train
from fer3d.data import labels
from fer3d.models.image_nets import load_pretrained

TEACHER = np.load(Path(__file__).with_name("teacher.npz"))["soft"]
STARTING_WEIGHTS = "models/resnet.pt"  # the committed run's resnet
load_labels = labels.load
build_model = stages.train.build_model


def with_teacher(paths, name: str) -> labels.Labels:
    kept = load_labels(paths, name)
    return labels.Labels(kept.name, kept.classes, kept.label, TEACHER)


def from_trained_resnet(name: str, **options):
    model = build_model(name, **options)
    load_pretrained(model, STARTING_WEIGHTS)
    print(f"started from {STARTING_WEIGHTS} ({len(model.pretrained_keys)} tensors)")
    return model


if __name__ == "__main__":
    labels.load = with_teacher
    stages.train.build_model = from_trained_resnet
    stages.train.main("resnet")
