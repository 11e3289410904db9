"""Scores of a model on another labelled set, with honest intervals.

The set's classes and the model's need not match: images of a class the model lacks (contempt, for
FER2013's 7-class models) are left out of its scores and counted under "excluded"; macro-F1 averages
over the classes the set has. The 95% intervals come from a percentile bootstrap over groups
(subjects, sequences): resampling whole groups keeps one person's many images from passing for
many independent tests. Each resample's confusion matrix is the sum of its groups' matrices, so
accuracy and macro-F1 of all resamples are computed at once."""

from __future__ import annotations

import numpy as np

DEFAULT_RESAMPLES = 1000
LEVEL = 0.95


def confusion_by_group(true: np.ndarray, pred: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """(G, k, k) confusion counts of each group (rows: true class, columns: predicted)."""
    g = np.unique(groups, return_inverse=True)[1]
    counts = np.zeros((g.max() + 1 if len(g) else 0, k * k), np.int64)
    np.add.at(counts, (g, true * k + pred), 1)
    return counts.reshape(-1, k, k)


def accuracy_of(confusion: np.ndarray) -> np.ndarray:
    """Accuracy of (..., k, k) confusion matrices."""
    total = confusion.sum((-1, -2))
    return np.trace(confusion, axis1=-2, axis2=-1) / np.maximum(total, 1)


def macro_f1_of(confusion: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Macro-F1 of (..., k, k) confusion matrices over the class indices `classes` (those the set
    has) that each matrix holds true images of: a bootstrap resample that happens to draw no image
    of a rare class averages over the others, instead of counting that class as F1 0."""
    tp = np.diagonal(confusion, axis1=-2, axis2=-1)
    true_n, pred_n = confusion.sum(-1), confusion.sum(-2)
    f1 = (2 * tp / np.maximum(true_n + pred_n, 1))[..., classes]
    held = true_n[..., classes] > 0
    return (f1 * held).sum(-1) / np.maximum(held.sum(-1), 1)


def bootstrap(
    group_confusion: np.ndarray, classes: np.ndarray, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> dict[str, list[float]]:
    """95% percentile intervals of accuracy and macro-F1, resampling groups with replacement."""
    n_groups = len(group_confusion)
    draws = np.random.default_rng(seed).integers(0, n_groups, size=(resamples, n_groups))
    weights = np.zeros((resamples, n_groups), np.int64)
    np.add.at(weights, (np.arange(resamples)[:, None], draws), 1)
    confusions = np.einsum("bg,gij->bij", weights, group_confusion)
    tails = [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2]
    return {
        "accuracy": [round(float(v), 5) for v in np.percentile(accuracy_of(confusions), tails)],
        "macro_f1": [round(float(v), 5) for v in np.percentile(macro_f1_of(confusions, classes), tails)],
    }


def score_on_set(
    proba: np.ndarray,
    labels: list[str],
    model_classes: list[str],
    groups: np.ndarray,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict:
    """One model's (N, C) probabilities against class names `labels` (N,): accuracy, macro-F1,
    per-class recall, confusion, their intervals, and what it could not be scored on."""
    labels = np.asarray(labels)
    known = np.isin(labels, model_classes)
    excluded = {str(c): int((labels == c).sum()) for c in dict.fromkeys(labels[~known])}
    index = {c: i for i, c in enumerate(model_classes)}
    true = np.array([index[c] for c in labels[known]], np.int64)
    pred = np.asarray(proba)[known].argmax(1)
    k = len(model_classes)
    present = np.unique(true)
    group_conf = confusion_by_group(true, pred, np.asarray(groups)[known], k)
    confusion = group_conf.sum(0)
    recall = np.diagonal(confusion) / np.maximum(confusion.sum(1), 1)
    out = {
        "images": int(known.sum()),
        "groups": len(group_conf),
        "accuracy": round(float(accuracy_of(confusion)), 5) if known.any() else None,
        "macro_f1": round(float(macro_f1_of(confusion, present)), 5) if known.any() else None,
        "per_class_recall": {model_classes[i]: round(float(recall[i]), 4) for i in present},
        "confusion": {"classes": list(model_classes), "counts": confusion.tolist()},
        "excluded": excluded,
    }
    if known.any() and len(group_conf) > 1:  # one group: every resample is the same, no interval
        out["interval_95"] = bootstrap(group_conf, present, resamples, seed)
    return out
