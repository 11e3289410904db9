"""Scores of predicted labels: accuracy, macro-F1, per-class precision/recall, confusion matrix."""

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
    out = {
        "images": int(n),
        "accuracy": round(float((y_true == y_pred).mean()), 5) if n else None,
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)), 5)
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
