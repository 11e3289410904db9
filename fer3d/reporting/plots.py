"""PNG figures for eyes that do not open `dvc plots show` (whose HTML loads Vega from a CDN)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import EMOTIONS
from ..evaluation.metrics import normalised_confusion
from ..io import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path, dpi: int = 100) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    _pyplot().close(fig)
    return Path(path)


def confusion_grid(
    path: str | Path, confusions: dict[str, list[list[int]]], classes: tuple[str, ...] | list[str] = EMOTIONS
) -> Path:
    """Row-normalised confusion matrices (true class per row), one panel per model."""
    plt = _pyplot()
    n = len(confusions)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.3 * rows), squeeze=False)
    short = [e[:3] for e in classes]
    for ax, (name, c) in zip(axes.flat, confusions.items()):
        m = normalised_confusion(np.array(c))
        ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(m)):
            for j in range(len(m)):
                ax.text(
                    j,
                    i,
                    f"{m[i, j]:.2f}".lstrip("0"),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if m[i, j] > 0.5 else "black",
                )
        acc = np.trace(np.array(c)) / max(1, np.sum(c))
        ax.set_title(f"{name} ({100 * acc:.1f}%)", fontsize=9)
        ax.set_xticks(range(len(short)), short, fontsize=7, rotation=90)
        ax.set_yticks(range(len(short)), short, fontsize=7)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def training_curves(path: str | Path, histories: dict[str, list[dict]]) -> Path:
    """Validation accuracy and training loss per epoch, every model on one figure."""
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for name, h in histories.items():
        epochs = [r["epoch"] for r in h]
        validated = [r for r in h if r.get("val_acc") is not None]  # train.validate_* skips early epochs
        a.plot([r["epoch"] for r in validated], [r["val_acc"] for r in validated], ".-", ms=3, label=name)
        b.plot(epochs, [r["train_loss"] for r in h], label=name)
    a.set(xlabel="epoch", ylabel="validation accuracy (PublicTest)")
    b.set(xlabel="epoch", ylabel="training loss")
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    b.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
