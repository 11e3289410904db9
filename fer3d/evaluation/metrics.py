"""Scores of predicted labels: accuracy, macro-F1, per-class precision/recall, confusion matrix, and
the difference of two predictors' accuracies on the same images."""

from __future__ import annotations

import numpy as np

from ..config import EMOTIONS


def score(
    y_true: np.ndarray, y_pred: np.ndarray, with_classes: bool = False, classes: tuple[str, ...] = EMOTIONS
) -> dict:
    """Accuracy and macro-F1 (and per-class precision/recall/F1 + confusion) over `classes`."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    labels = list(range(len(classes)))
    n = len(y_true)
    # over the classes the set holds (as crossdata.macro_f1_of): one it lacks is no F1 of 0 (a smoke run's subset)
    present = sorted(int(c) for c in np.unique(y_true))
    out = {
        "images": int(n),
        "accuracy": round(float((y_true == y_pred).mean()), 5) if n else None,
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)), 5)
        if n
        else None,
    }
    if with_classes and n:
        p, r, f, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
        out["per_class"] = {
            name: {
                "precision": round(float(p[i]), 4),
                "recall": round(float(r[i]), 4),
                "f1": round(float(f[i]), 4),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        }
        out["confusion"] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    return out


def normalised_confusion(confusion: np.ndarray) -> np.ndarray:
    """Rows (true classes) scaled to sum to 1: per-class recall on the diagonal."""
    c = np.asarray(confusion, np.float64)
    return c / np.maximum(c.sum(1, keepdims=True), 1)


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray, resamples: int = 1000, seed: int = 0) -> dict:
    """Accuracy of A minus accuracy of B on the same images, with a 95% percentile bootstrap interval
    (images resampled with replacement, both predictors together).

    Two models scored on one split agree on most images: only those one gets right and the other
    wrong move the difference, so its interval is far narrower than either accuracy's, and it says
    whether a trial's lead on PublicTest is more than the luck of which images the split holds."""
    a, b = np.asarray(correct_a), np.asarray(correct_b)
    if a.ndim != 1 or a.shape != b.shape or not len(a) or a.dtype != bool or b.dtype != bool:
        raise ValueError(
            f"paired_difference needs two boolean vectors of one non-zero length, found {a.dtype}{a.shape} "
            f"and {b.dtype}{b.shape}"
        )
    diff = a.astype(np.int8) - b.astype(np.int8)
    return {
        **_bootstrap_mean(diff, resamples, seed),
        "only_a_right": int((diff > 0).sum()),
        "only_b_right": int((diff < 0).sum()),
        "images": len(diff),
    }


def paired_score_difference(score_a: np.ndarray, score_b: np.ndarray, resamples: int = 1000, seed: int = 0) -> dict:
    """paired_difference for per-image scores in [0, 1] rather than right/wrong: e.g. the share of a
    face's shifted versions each predictor gets right, whose mean is the shifted accuracy."""
    a, b = np.asarray(score_a, np.float64), np.asarray(score_b, np.float64)
    if a.ndim != 1 or a.shape != b.shape or not len(a) or not all(((v >= 0) & (v <= 1)).all() for v in (a, b)):
        raise ValueError(
            "paired_score_difference needs two vectors of one non-zero length with scores in [0, 1], found "
            f"{_shape_and_range(a)} and {_shape_and_range(b)}"
        )
    return {**_bootstrap_mean(a - b, resamples, seed), "images": len(a)}


def _bootstrap_mean(diff: np.ndarray, resamples: int, seed: int) -> dict:
    """The mean of per-image differences and its 95% percentile bootstrap interval over images."""
    draws = np.random.default_rng(seed).integers(0, len(diff), size=(resamples, len(diff)))
    low, high = np.percentile(diff[draws].mean(1), [2.5, 97.5])
    return {"difference": round(float(diff.mean()), 5), "interval_95": [round(float(low), 5), round(float(high), 5)]}


def _shape_and_range(v: np.ndarray) -> str:
    return f"{v.shape} in [{v.min():g}, {v.max():g}]" if v.size else f"{v.shape}"
