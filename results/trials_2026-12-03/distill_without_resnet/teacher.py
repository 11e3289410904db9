"""Trial (issue 13, 2026-12-03 session 16), step 1: resnet's teacher without resnet. The fusion of the
seven other models of the committed run, weights fitted on PublicTest (fer3d.inference.fusion.fit_weights,
as the evaluate stage fits a row), scored on every FER2013 row, tempered with T = 2 and mixed 0.5 / 0.5 with
the one-hot label on training rows (one-hot elsewhere) -> the .npz named on the command line.

    python results/trials_2026-12-03/distill_without_resnet/teacher.py /tmp/teacher.npz   # from the repo root

Step 2 is ../distill_resnet/student.py with this teacher.npz beside it. pipeline.patch makes the same
targets, bit for bit, as a `teacher` stage (`dvc repro teacher`)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, "bench")
import fusion_members

from fer3d.config import TEST, TRAIN, VAL, Paths
from fer3d.inference.fusion import Fusion, fit_weights, load_fusions
from fer3d.io import load_npz

# the first distillation trial's script, for its targets (T = 2, share 0.5): loaded by path, as its
# module name is this one's
_FULL = Path(__file__).parents[1] / "distill_resnet" / "teacher.py"
_spec = importlib.util.spec_from_file_location("full_teacher", _FULL)
full_teacher = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(full_teacher)

MEMBERS = ["cnn", "vgg", "landmark_mlp", "landmark_cnn", "distance_cnn", "voxel_cnn", "mesh_gnn"]


def main(out: str, members: list[str] = MEMBERS, model_files: dict[str, str] | None = None) -> None:
    """`model_files`: a member's model file other than the committed run's models/<member>.pt."""
    torch.set_num_threads(2)
    paths = Paths(".")
    prior = load_fusions(paths.fusion)["fusion"].prior
    fer = load_npz(paths.fer2013)
    rows = np.arange(len(fer["label"]))
    probas, family = {}, {}
    for m in members:
        path = (model_files or {}).get(m, str(paths.models / f"{m}.pt"))
        probas[m], family[m], _ = fusion_members.score_file(path, str(paths.landmarks), fer["images"], rows)
    _, found = fusion_members.mesh_inputs(str(paths.landmarks))
    label, split = fer["label"].astype(int), fer["split"]
    val = split == VAL
    takes = [found if family[m] == "3d" else np.ones_like(found) for m in members]
    weights = fit_weights([probas[m][val] for m in members], label[val], [t[val] for t in takes])
    print("weights", dict(zip(members, np.round(weights, 4))))
    teacher = Fusion("teacher", members, [float(x) for x in weights], [family[m] for m in members], prior)
    fused = teacher.combine(probas, found)
    for name, s in (("training", TRAIN), ("PublicTest", VAL), ("PrivateTest", TEST)):
        print(f"teacher accuracy on {name}: {(fused[split == s].argmax(1) == label[split == s]).mean():.4f}")
    np.savez(out, soft=full_teacher.soft_targets(fused, label, split))


if __name__ == "__main__":
    main(sys.argv[1])
