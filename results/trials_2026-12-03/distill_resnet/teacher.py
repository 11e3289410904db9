"""Distillation trial (issue 13, 2026-12-03), step 1: the committed `fusion` row's probabilities on
every FER2013 row (its members with weight > 0, scored as bench/fusion_members.py scores them),
tempered with T = 2 and mixed 0.5 / 0.5 with the one-hot label on training rows (one-hot on the
others, which training never learns from) -> teacher.npz beside this script.

    python results/trials_2026-12-03/distill_resnet/teacher.py     # from the repo root, after dvc repro
"""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, "bench")
import fusion_members

from fer3d.config import TRAIN, VAL, Paths
from fer3d.inference.fusion import Fusion, load_fusions
from fer3d.io import load_npz

TEMPERATURE = 2.0
TEACHER_SHARE = 0.5


def main() -> None:
    torch.set_num_threads(2)
    paths = Paths(".")
    fusion = load_fusions(paths.fusion)["fusion"]
    fer = load_npz(paths.fer2013)
    rows = np.arange(len(fer["label"]))
    voting = [i for i, w in enumerate(fusion.weights) if w > 0]
    teacher = Fusion(
        "teacher",
        [fusion.members[i] for i in voting],
        [fusion.weights[i] for i in voting],
        [fusion.families[i] for i in voting],
        fusion.prior,
    )
    probas = {}
    for m in teacher.members:
        path = str(paths.models / f"{m}.pt")
        probas[m], _, _ = fusion_members.score_file(path, str(paths.landmarks), fer["images"], rows)
    _, found = fusion_members.mesh_inputs(str(paths.landmarks))
    fused = teacher.combine(probas, found)
    label, split = fer["label"].astype(int), fer["split"]
    for name, rows_of in (("training", split == TRAIN), ("PublicTest", split == VAL)):
        print(f"teacher accuracy on {name}: {(fused[rows_of].argmax(1) == label[rows_of]).mean():.4f}")
    np.savez(Path(__file__).with_name("teacher.npz"), soft=soft_targets(fused, label, split))


def soft_targets(fused: np.ndarray, label: np.ndarray, split: np.ndarray) -> np.ndarray:
    """float32 (N, C): on training rows (1 - TEACHER_SHARE) one-hot label + TEACHER_SHARE teacher at
    TEMPERATURE (p^(1/T), renormalised); elsewhere the one-hot label."""
    tempered = fused.astype(np.float64) ** (1 / TEMPERATURE)
    tempered /= tempered.sum(1, keepdims=True)
    onehot = np.eye(fused.shape[1])[label]
    train = split == TRAIN
    return np.where(train[:, None], (1 - TEACHER_SHARE) * onehot + TEACHER_SHARE * tempered, onehot).astype(np.float32)


if __name__ == "__main__":
    main()
