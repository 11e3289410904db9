"""The honest protocol: every model scored on the same test images.

- reported: PrivateTest (selection used PublicTest only);
- public_private: PublicTest + PrivateTest (7,178 images), to compare with the reference project
  (which also chose its checkpoints there, so this number flatters everyone);
- dedup: PrivateTest rows whose pixels do not occur in Training;
- ferplus: PrivateTest against the FER+ majority vote (rows whose majority is one of the 7 classes);
- found_only: PrivateTest rows where MediaPipe found a face (the reference's 3D protocol).
A 3D model cannot score a face MediaPipe missed: it falls back to the training class prior or to
the best 2D model, as params say, and the table states which.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import EMOTIONS
from .metrics import score

# FER+ columns in fer2013new.csv, mapped onto FER2013's class indices (contempt/unknown/NF: none)
FERPLUS_TO_FER = {"neutral": 6, "happiness": 3, "surprise": 5, "sadness": 4, "anger": 0, "disgust": 1, "fear": 2}
VAL, TEST = 1, 2


@dataclass
class Subsets:
    """Row indices (into the full arrays) of each scored subset."""
    test: np.ndarray
    public_private: np.ndarray
    dedup: np.ndarray
    found: np.ndarray
    ferplus: np.ndarray
    ferplus_label: np.ndarray  # FER+ majority label of each `ferplus` row

    def sizes(self) -> dict[str, int]:
        return {k: int(len(getattr(self, k))) for k in ("test", "public_private", "dedup", "found", "ferplus")}


def duplicated_in_training(images: np.ndarray, split: np.ndarray) -> np.ndarray:
    """bool (N,): the row's exact pixels occur in the training split."""
    digests = np.array([hashlib.blake2b(img.tobytes(), digest_size=16).digest() for img in images])
    train = set(digests[split == 0].tolist())
    return np.array([d in train for d in digests.tolist()])


def ferplus_majority(path: Path, n_rows: int) -> np.ndarray:
    """FER+ majority label per row in FER2013 class indices, -1 where the majority is contempt,
    unknown or not-a-face (or the file has no row). Joined by row position, as FER+ documents."""
    import csv

    out = np.full(n_rows, -1, np.int64)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF"]
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: expected FER+ vote columns, missing {missing}")
        for i, row in enumerate(reader):
            if i >= n_rows:
                break
            votes = np.array([float(row[c] or 0) for c in columns])
            top = columns[int(votes.argmax())]
            if votes.max() > 0 and top in FERPLUS_TO_FER:
                out[i] = FERPLUS_TO_FER[top]
    return out


def subsets(images: np.ndarray, split: np.ndarray, row: np.ndarray, found: np.ndarray,
            ferplus_path: Path | None) -> Subsets:
    test = np.flatnonzero(split == TEST)
    dup = duplicated_in_training(images, split)
    ferplus_idx, ferplus_label = np.zeros(0, np.int64), np.zeros(0, np.int64)
    if ferplus_path is not None and ferplus_path.exists() and (row >= 0).all():
        majority = ferplus_majority(ferplus_path, int(row.max()) + 1)[row]
        ferplus_idx = test[majority[test] >= 0]
        ferplus_label = majority[ferplus_idx]
    return Subsets(test=test, public_private=np.flatnonzero(split >= VAL), dedup=test[~dup[test]],
                   found=test[found[test]], ferplus=ferplus_idx, ferplus_label=ferplus_label)


def fill_misses(proba: np.ndarray, usable: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Rows the model could not score take the fallback's probabilities (a prior row or a matrix)."""
    out = proba.copy()
    out[~usable] = fallback[~usable] if fallback.ndim == 2 else fallback
    return out


def fuse(probas: Sequence[np.ndarray], weights: Sequence[float], takes_part: Sequence[np.ndarray] | None = None
         ) -> np.ndarray:
    """Log-linear late fusion: softmax(sum_i w_i log p_i) over rows (N, C).

    takes_part[i] (N,) bool: the rows where model i votes (a 3D model only where MediaPipe found
    a face); elsewhere its term is left out rather than replaced by a fallback guess."""
    logits = np.zeros_like(np.asarray(probas[0], np.float64))
    for i, (p, w) in enumerate(zip(probas, weights)):
        term = w * np.log(np.clip(np.asarray(p, np.float64), 1e-7, 1))
        if takes_part is not None:
            term = term * np.asarray(takes_part[i], bool)[:, None]
        logits += term
    logits -= logits.max(1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def fit_fusion_weights(probas: Sequence[np.ndarray], y: np.ndarray,
                       takes_part: Sequence[np.ndarray] | None = None, steps: int = 300) -> np.ndarray:
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
    theta = torch.full((len(probas),), float(np.log(np.expm1(1 / len(probas)))), dtype=torch.float64,
                       requires_grad=True)
    opt = torch.optim.LBFGS([theta], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = (torch.nn.functional.softplus(theta)[:, None, None] * logp).sum(0)
        loss = torch.nn.functional.cross_entropy(logits, target)
        loss.backward()
        return loss

    opt.step(closure)
    return torch.nn.functional.softplus(theta).detach().numpy()


def score_model(proba: np.ndarray, label: np.ndarray, sets: Subsets) -> dict:
    """All protocol numbers of one model's probabilities over every row (N,C)."""
    pred = proba.argmax(1)
    return {
        "test": score(label[sets.test], pred[sets.test], with_classes=True),
        "public_private": score(label[sets.public_private], pred[sets.public_private]),
        "dedup": score(label[sets.dedup], pred[sets.dedup]),
        "found_only": score(label[sets.found], pred[sets.found]),
        "ferplus": score(sets.ferplus_label, pred[sets.ferplus]) if len(sets.ferplus) else None,
    }


def comparison_markdown(results: dict[str, dict], sizes: dict[str, int], fallback: str) -> str:
    """The comparison table, one row per model (and the fusion), best first within each family."""
    head = ("| model | family | PrivateTest acc | macro-F1 | found-only acc | dedup acc | Public+Private acc | FER+ acc | val acc |\n"
            "|---|---|---|---|---|---|---|---|---|\n")
    pct = lambda v: "–" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    rows = []
    for name, r in sorted(results.items(), key=lambda kv: ({"2d": 0, "3d": 1, "fusion": 2}[kv[1]["family"]], -kv[1]["scores"]["test"]["accuracy"])):
        s = r["scores"]
        rows.append(f"| {name} | {r['family']} | {pct(s['test']['accuracy'])} | {pct(s['test']['macro_f1'])} | "
                    f"{pct(s['found_only']['accuracy'])} | {pct(s['dedup']['accuracy'])} | {pct(s['public_private']['accuracy'])} | "
                    f"{pct(s['ferplus']['accuracy'] if s['ferplus'] else None)} | {pct(r.get('val_acc'))} |")
    notes = (f"\nPrivateTest: {sizes['test']:,} images, all of them for every model; found-only: the {sizes['found']:,} "
             f"where MediaPipe found a face; dedup: the {sizes['dedup']:,} whose pixels are not in Training; "
             f"Public+Private: {sizes['public_private']:,} (PublicTest is the validation split every model was selected on); "
             f"FER+: the {sizes['ferplus']:,} PrivateTest images whose FER+ majority vote is one of the 7 classes. "
             f"3D models score faces MediaPipe missed with the fallback `{fallback}`. Classes: {', '.join(EMOTIONS)}.\n")
    return head + "\n".join(rows) + "\n" + notes
