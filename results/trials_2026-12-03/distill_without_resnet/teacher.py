"""Trial: teacher = fusion of every model but resnet, weights fitted on PublicTest, scored on all rows."""
import sys
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, "bench")
import fusion_members
from fer3d.config import TRAIN, VAL, Paths
from fer3d.inference.fusion import Fusion, fit_weights, load_fusions
from fer3d.io import load_npz

MEMBERS = ["cnn", "vgg", "landmark_mlp", "landmark_cnn", "distance_cnn", "voxel_cnn", "mesh_gnn"]
T, SHARE = 2.0, 0.5
torch.set_num_threads(2)
paths = Paths(".")
prior = load_fusions(paths.fusion)["fusion"].prior
fer = load_npz(paths.fer2013)
rows = np.arange(len(fer["label"]))
probas, fam = {}, {}
for m in MEMBERS:
    probas[m], fam[m], _ = fusion_members.score_file(str(paths.models / f"{m}.pt"), paths, fer["images"], rows)
_, found = fusion_members.mesh_inputs(str(paths.landmarks))
label, split = fer["label"].astype(int), fer["split"]
val = split == VAL
takes = [found if fam[m] == "3d" else np.ones_like(found) for m in MEMBERS]
w = fit_weights([probas[m][val] for m in MEMBERS], label[val], [t[val] for t in takes])
print("weights", dict(zip(MEMBERS, np.round(w, 4))))
teacher = Fusion("teacher", MEMBERS, [float(x) for x in w], [fam[m] for m in MEMBERS], prior)
fused = teacher.combine(probas, found).astype(np.float64)
tempered = fused ** (1 / T); tempered /= tempered.sum(1, keepdims=True)
onehot = np.eye(fused.shape[1])[label]
train = split == TRAIN
soft = np.where(train[:, None], (1 - SHARE) * onehot + SHARE * tempered, onehot)
for name, r in (("training", train), ("PublicTest", val), ("PrivateTest", split == 2)):
    print(f"teacher accuracy on {name}: {(fused[r].argmax(1) == label[r]).mean():.4f}")
np.savez(sys.argv[1], soft=soft.astype(np.float32))
