"""Trial: fine-tune the committed resnet on the full fusion's targets (teacher.npz beside this script)."""
import sys
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, ".")
import stages.train
from fer3d.data import labels
from fer3d.models.image_nets import load_pretrained

TEACHER = np.load(Path(__file__).with_name("teacher.npz"))["soft"]
load_labels = labels.load
build = stages.train.build_model

def with_teacher(paths, name):
    kept = load_labels(paths, name)
    return labels.Labels(kept.name, kept.classes, kept.label, TEACHER)

def from_resnet(name, **kw):
    model = build(name, **kw)
    load_pretrained(model, "/work/main/models/resnet.pt")
    print("started from", model.pretrained_keys[:2], len(model.pretrained_keys), "tensors")
    return model

labels.load = with_teacher
stages.train.build_model = from_resnet
stages.train.main("resnet")
