"""Train landmark_mlp where each training face, each time it is drawn, takes with probability P the
points FaceMesh found on a shifted copy of its crop (READINGS.npz from reread.py) instead of the
plain ones (dynamic re-reading; validation stays plain): python train_reread.py READINGS.npz P
(run with FER3D_ROOT=<trial folder>, cwd the project)."""

import sys

import numpy as np
import torch

from fer3d.config import TRAIN
from fer3d.io import load_npz
from fer3d.models import inputs
from fer3d.training import features
from stages import train

readings, prob = sys.argv[1], float(sys.argv[2])
original = features._landmarks


def with_rereads(lm, topology, base, opts):
    fs = original(lm, topology, base, opts)
    rr = load_npz(readings)
    k, rows = len(rr["shifts"]), rr["rows"]
    alt = torch.zeros((k, *fs.rows.shape), dtype=fs.rows.dtype)
    has = np.zeros((k, len(fs.rows)), bool)
    for i in range(k):
        ok = rr["found"][i] & base["usable"][rows]
        alt[i, rows[ok]] = torch.from_numpy(
            inputs.landmark_rows(rr["landmarks"][i][ok].astype(np.float32), base["stats"])
        )
        has[i, rows[ok]] = True
    has_t, split_t = torch.from_numpy(has), torch.from_numpy(fs.split == TRAIN)
    gen = torch.Generator().manual_seed(12345)
    plain_batch = fs.batch

    def batch(index, device):
        index = torch.as_tensor(index)
        if not bool(split_t[index].all()):  # validation and scoring: plain points
            return plain_batch(index, device)
        x = fs.rows[index].clone()
        pick = torch.randint(0, k, (len(index),), generator=gen)
        take = (torch.rand(len(index), generator=gen) < prob) & has_t[pick, index]
        x[take] = alt[pick[take], index[take]]
        return fs._to_model(x.to(device))

    fs.batch = batch
    print(
        f"train_reread: {int(has.sum())} shifted readings of {int(split_t.sum())} training rows, p {prob}",
        file=sys.stderr,
    )
    return fs


features._landmarks = with_rereads
if __name__ == "__main__":
    train.main("landmark_mlp")
