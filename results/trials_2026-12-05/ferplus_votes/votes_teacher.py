"""Issue 13 trial (2026-12-05): FER+'s ten annotators as a free teacher for resnet. Each training
row's target is (1 - SHARE) one-hot FER2013 label + SHARE of its FER+ votes over FER2013's seven
classes (single votes dropped as FER+'s reference does; contempt, unknown and not-a-face left out,
renormalised); a row with no such votes keeps its one-hot label. SHARE < 0.5, so the target's top
class is always FER2013's own label: the votes only say which other classes a face resembles, as a
teacher's soft targets do, at no training cost. The train stage's label smoothing applies on top.

    FER3D_ROOT=<copy> FER3D_TRACKING=off python results/trials_2026-12-05/ferplus_votes/votes_teacher.py SHARE
    (from the repo root; <copy> holds params.yaml with models.resnet.soft_labels: true and data/)
"""

import os
import sys

import numpy as np

sys.path.insert(0, ".")
import stages.train
from fer3d.config import TRAIN, Paths
from fer3d.data import labels
from fer3d.data.ferplus import COLUMNS, TO_FER2013
from fer3d.io import load_npz

load_labels = labels.load


def votes_targets(fer2013_label: np.ndarray, votes: np.ndarray, split: np.ndarray, share: float) -> np.ndarray:
    """float32 (N, 7): on training rows with FER+ emotion votes (1 - share) one-hot + share votes;
    one-hot elsewhere."""
    kept = labels.without_single_votes(votes)
    dist = np.zeros((len(votes), 7), np.float64)
    for column, cls in TO_FER2013.items():
        dist[:, cls] = kept[:, COLUMNS.index(column)]
    total = dist.sum(1, keepdims=True)
    has_votes = (total[:, 0] > 0) & (split == TRAIN)
    dist = dist / np.maximum(total, 1)
    onehot = np.eye(7)[fer2013_label]
    mixed = (1 - share) * onehot + share * dist
    return np.where(has_votes[:, None], mixed, onehot).astype(np.float32)


def with_votes(paths: Paths, name: str) -> labels.Labels:
    kept = load_labels(paths, name)
    fer, stored = load_npz(paths.fer2013), load_npz(paths.ferplus)
    if name != "fer2013" or not bool(stored["available"]):
        raise SystemExit(f"want data.labels fer2013 and FER+ votes, found {name!r}, available={stored['available']}")
    soft = votes_targets(kept.label, stored["votes"], fer["split"], SHARE)
    train = fer["split"] == TRAIN
    agree = (soft[train].argmax(1) == kept.label[train]).mean()
    print(f"share {SHARE}: target top class = FER2013 label on {agree:.4f} of training rows", flush=True)
    return labels.Labels(kept.name, kept.classes, kept.label, soft)


SHARE = float(sys.argv[1]) if len(sys.argv) > 1 else 0.3

if __name__ == "__main__":
    assert os.environ.get("FER3D_ROOT"), "set FER3D_ROOT to the trial copy"
    labels.load = with_votes
    stages.train.main("resnet")
