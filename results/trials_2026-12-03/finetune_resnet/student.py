"""Trial (issue 13, 2026-12-03 session 16): the committed resnet fine-tuned on the full teacher's targets
(../distill_resnet/teacher.py's teacher.npz, read by ../distill_resnet/student.py): the train stage for resnet,
started from models/resnet.pt's weights, in a project copy whose params.yaml is params.diff's (10
epochs, lr 5e-4, `soft_labels: true`):

    FER3D_ROOT=<copy> python results/trials_2026-12-03/finetune_resnet/student.py   # from the repo root
"""

import sys
from pathlib import Path

sys.path.insert(0, ".")
sys.path.insert(0, str(Path(__file__).parents[1] / "distill_resnet"))
import student as distilled  # the first distillation trial's step 2: its targets as soft labels

import stages.train
from fer3d.data import labels
from fer3d.models.image_nets import load_pretrained

STARTING_WEIGHTS = "models/resnet.pt"  # the committed run's resnet
build_model = stages.train.build_model


def from_trained_resnet(name: str, **options):
    model = build_model(name, **options)
    load_pretrained(model, STARTING_WEIGHTS)
    print(f"started from {STARTING_WEIGHTS} ({len(model.pretrained_keys)} tensors)")
    return model


if __name__ == "__main__":
    labels.load = distilled.with_teacher
    stages.train.build_model = from_trained_resnet
    stages.train.main("resnet")
