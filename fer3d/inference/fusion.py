"""Late fusion as a model: models/fusion.json holds each fusion row's members, their full-precision
weights and the one no-mesh rule, written by the evaluate stage (which fits the weights on
PublicTest) and read by everything that predicts.

fused = softmax(sum_i w_i log p_i). The no-mesh rule, the same everywhere: a 3D member votes only
on faces where FaceMesh found a mesh; a face on which no member votes (a 3D-only fusion on a face
without a mesh) gets the training class prior."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..io import save_json

FORMAT = "fer3d-fusion-1"
NO_MESH_RULE = (
    "a 3D member votes only on faces with a FaceMesh mesh; a face no member votes on gets the training class prior"
)


@dataclass
class Fusion:
    name: str
    members: list[str]
    weights: list[float]
    families: list[str]  # each member's, "2d" or "3d"
    prior: list[float]

    def combine(self, probas: dict[str, np.ndarray], has_mesh: np.ndarray) -> np.ndarray:
        """(N, C) float32 from the members' (N, C) probabilities."""
        has_mesh = np.asarray(has_mesh, bool)
        takes_part = [has_mesh if f == "3d" else np.ones_like(has_mesh) for f in self.families]
        fused = fuse([probas[m] for m in self.members], self.weights, takes_part)
        nobody = ~np.logical_or.reduce(takes_part)
        fused[nobody] = np.asarray(self.prior, np.float32)
        return fused


def fuse(
    probas: Sequence[np.ndarray], weights: Sequence[float], takes_part: Sequence[np.ndarray] | None = None
) -> np.ndarray:
    """Log-linear late fusion: softmax(sum_i w_i log p_i) over rows (N, C).

    takes_part[i] (N,) bool: the rows where model i votes; elsewhere its term is left out rather
    than replaced by a fallback guess."""
    logits = np.zeros_like(np.asarray(probas[0], np.float64))
    for i, (p, w) in enumerate(zip(probas, weights)):
        term = w * np.log(np.clip(np.asarray(p, np.float64), 1e-7, 1))
        if takes_part is not None:
            term = term * np.asarray(takes_part[i], bool)[:, None]
        logits += term
    logits -= logits.max(1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def fit_weights(
    probas: Sequence[np.ndarray], y: np.ndarray, takes_part: Sequence[np.ndarray] | None = None, steps: int = 300
) -> np.ndarray:
    """Non-negative weights of `fuse` minimising cross-entropy on the given (validation) rows.

    A weight per model rather than a grid over pairs: with 8 models a grid is too big, and the
    log-loss also calibrates the fused probabilities (weights need not sum to 1). Deterministic:
    full-batch L-BFGS from equal weights on CPU."""
    import torch

    logp = torch.stack([torch.from_numpy(np.log(np.clip(np.asarray(p, np.float64), 1e-7, 1))) for p in probas])
    if takes_part is not None:
        logp = logp * torch.from_numpy(np.stack([np.asarray(t, bool) for t in takes_part]))[:, :, None]
    target = torch.from_numpy(np.asarray(y, np.int64))
    # weights = softplus(theta) >= 0; theta0 gives each model weight 1/M
    theta = torch.full(
        (len(probas),), float(np.log(np.expm1(1 / len(probas)))), dtype=torch.float64, requires_grad=True
    )
    opt = torch.optim.LBFGS([theta], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = (torch.nn.functional.softplus(theta)[:, None, None] * logp).sum(0)
        loss = torch.nn.functional.cross_entropy(logits, target)
        loss.backward()
        return loss

    opt.step(closure)
    return torch.nn.functional.softplus(theta).detach().numpy()


def save_fusions(path: str | Path, fusions: dict[str, Fusion], classes: Sequence[str]) -> Path:
    return save_json(
        path,
        {
            "format": FORMAT,
            "classes": list(classes),
            "no_mesh_rule": NO_MESH_RULE,
            "fusions": {name: asdict(f) for name, f in fusions.items()},
        },
    )


def load_fusions(path: str | Path, classes: Sequence[str] | None = None) -> dict[str, Fusion]:
    """Every fusion row of a fusion file; errors name the file and what was expected. With `classes`
    (the loaded models'), a file written for other classes (a run with another label set) is refused."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no fusion file (the evaluate stage writes it); run `dvc repro` or "
            "`dvc pull` first, or leave the fusion out"
        )
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"expected format {FORMAT!r}, found {data.get('format')!r}")
        fusions = {name: Fusion(**row) for name, row in data["fusions"].items()}
        file_classes = [str(c) for c in data["classes"]]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a fer3d fusion file ({e})") from e
    for f in fusions.values():
        if not (len(f.members) == len(f.weights) == len(f.families)) or not f.members:
            raise ValueError(f"{path}: fusion {f.name!r} needs as many weights and families as members")
        if len(f.prior) != len(file_classes):
            raise ValueError(
                f"{path}: fusion {f.name!r} has a prior of {len(f.prior)} classes, the file has {len(file_classes)}"
            )
    if classes is not None and file_classes != list(classes):
        raise ValueError(
            f"{path}: fitted for the classes {file_classes}, the models have {list(classes)}; "
            "re-run the evaluate stage (`dvc repro evaluate`) for these models"
        )
    return fusions
