"""Issue 13 trial (2026-12-05): the log-linear fusion with a per-class bias beside its weights
(softmax(sum_i w_i log p_i + b), 8 + 7 numbers instead of 8), fitted by cross-entropy on PublicTest
like the pipeline's, on the committed run's stored probabilities (metrics/probabilities.npz).
Judged as the pipeline chooses: 5-fold cross-validation on PublicTest (same folds for both), then
PrivateTest after fitting on all of PublicTest.

    python results/trials_2026-12-05/fusion_bias/fusion_bias.py     # from the repo root
"""

import sys

import numpy as np
import torch

sys.path.insert(0, "bench")
import fusion_members  # bench/: a finished run's stored probabilities

from fer3d.config import TEST, VAL, Paths

ROWS = {"fusion": None, "fusion_2d": None, "fusion_3d": None}


def fit(logp: torch.Tensor, y: torch.Tensor, with_bias: bool, bias_l2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """logp (M, N, C) masked log-probabilities -> (weights (M,), bias (C,))."""
    m, _, c = logp.shape
    theta = torch.full((m,), float(np.log(np.expm1(1 / m))), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(c, dtype=torch.float64, requires_grad=with_bias)
    params = [theta, bias] if with_bias else [theta]
    opt = torch.optim.LBFGS(params, lr=0.5, max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = (torch.nn.functional.softplus(theta)[:, None, None] * logp).sum(0) + bias
        loss = torch.nn.functional.cross_entropy(logits, y) + bias_l2 * (bias**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return torch.nn.functional.softplus(theta).detach(), bias.detach()


def accuracy(logp, y, w, b) -> float:
    return float(((w[:, None, None] * logp).sum(0) + b).argmax(1).eq(y).double().mean())


def main() -> None:
    torch.set_num_threads(1)
    run = fusion_members.stored_run(Paths("."))
    stored, has_mesh, fusions = run.probas, run.has_mesh.astype(bool), run.fusions
    label, val, test = run.labels.label[run.rows].astype(np.int64), run.split == VAL, run.split == TEST
    folds = np.random.default_rng(0).permutation(val.sum()) % 5
    for name, fusion in fusions.items():
        logp = torch.stack(
            [
                torch.from_numpy(np.log(np.clip(stored[m].astype(np.float64), 1e-7, 1)))
                * torch.from_numpy((has_mesh if f == "3d" else np.ones_like(has_mesh))[:, None].astype(np.float64))
                for m, f in zip(fusion.members, fusion.families)
            ]
        )
        lv, lt = logp[:, val], logp[:, test]
        yv, yt = torch.from_numpy(label[val]), torch.from_numpy(label[test])
        for with_bias, l2 in ((False, 0.0), (True, 0.0), (True, 0.01), (True, 0.1)):
            cv = []
            for k in range(5):
                tr, te = torch.from_numpy(folds != k), torch.from_numpy(folds == k)
                w, b = fit(lv[:, tr], yv[tr], with_bias, l2)
                cv.append(accuracy(lv[:, te], yv[te], w, b) * te.sum().item())
            w, b = fit(lv, yv, with_bias, l2)
            tag = f"bias l2={l2}" if with_bias else "weights only"
            print(
                f"{name:10s} {tag:14s} PublicTest 5-fold {100 * sum(cv) / len(yv):.2f}%  fitted on all: "
                f"PublicTest {100 * accuracy(lv, yv, w, b):.2f}% PrivateTest {100 * accuracy(lt, yt, w, b):.2f}%  "
                f"bias {np.round(b.numpy(), 3).tolist()}",
                flush=True,
            )


if __name__ == "__main__":
    main()
