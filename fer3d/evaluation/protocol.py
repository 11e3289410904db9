"""The honest protocol: every model scored on the same test images.

- reported: PrivateTest (selection used PublicTest only);
- public_private: PublicTest + PrivateTest (7,178 images), to compare with the reference project
  (which also chose its checkpoints there, so this number flatters everyone);
- dedup: PrivateTest rows whose pixels do not occur in Training;
- ferplus: PrivateTest against the FER+ top vote (rows whose most-voted emotion is one of the 7 classes);
- found_only: PrivateTest rows where MediaPipe found a face (the reference's 3D protocol).
A 3D model cannot score a face MediaPipe missed: its model file's training class prior answers
there (fer3d.inference), and the found-only column shows the difference.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..config import EMOTIONS, TEST, TRAIN, VAL
from .metrics import score

# FER+ columns in fer2013new.csv, mapped onto FER2013's class indices (contempt/unknown/NF: none)


@dataclass
class Subsets:
    """Row indices (into the full arrays) of each scored subset."""

    test: np.ndarray
    public_private: np.ndarray
    dedup: np.ndarray
    found: np.ndarray
    ferplus: np.ndarray
    ferplus_label: np.ndarray  # FER+ top-vote label of each `ferplus` row (the most-voted column; not a majority)

    def sizes(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in ("test", "public_private", "dedup", "found", "ferplus")}


def duplicated_in_training(images: np.ndarray, split: np.ndarray) -> np.ndarray:
    """bool (N,): the row's exact pixels occur in the training split."""
    digests = np.array([hashlib.blake2b(img.tobytes(), digest_size=16).digest() for img in images])
    train = set(digests[split == TRAIN].tolist())
    return np.array([d in train for d in digests.tolist()])


def subsets(
    images: np.ndarray,
    split: np.ndarray,
    found: np.ndarray,
    ferplus_top: np.ndarray | None,
    labelled: np.ndarray | None = None,
) -> Subsets:
    """The scored subsets; `ferplus_top` (N,): each row's FER+ top-vote class (-1: none), or None;
    `labelled` (N,): rows the label set keeps (fer3d.data.labels), all when None."""
    keep = np.ones(len(split), bool) if labelled is None else np.asarray(labelled, bool)
    dup = duplicated_in_training(images, split)
    split = np.where(keep, split, -1)  # a row without a label is in no subset
    test = np.flatnonzero(split == TEST)
    ferplus_idx, ferplus_label = np.zeros(0, np.int64), np.zeros(0, np.int64)
    if ferplus_top is not None:
        ferplus_idx = test[ferplus_top[test] >= 0]
        ferplus_label = ferplus_top[ferplus_idx]
    return Subsets(
        test=test,
        public_private=np.flatnonzero(split >= VAL),
        dedup=test[~dup[test]],
        found=test[found[test]],
        ferplus=ferplus_idx,
        ferplus_label=ferplus_label,
    )


def score_model(proba: np.ndarray, label: np.ndarray, sets: Subsets, classes: tuple[str, ...] = EMOTIONS) -> dict:
    """All protocol numbers of one model's probabilities over every row (N,C)."""
    pred = proba.argmax(1)
    return {
        "test": score(label[sets.test], pred[sets.test], with_classes=True, classes=classes),
        "public_private": score(label[sets.public_private], pred[sets.public_private], classes=classes),
        "dedup": score(label[sets.dedup], pred[sets.dedup], classes=classes),
        "found_only": score(label[sets.found], pred[sets.found], classes=classes),
        "ferplus": score(sets.ferplus_label, pred[sets.ferplus]) if len(sets.ferplus) else None,
    }


COMPARISON_HEAD = [
    "model",
    "family",
    "PrivateTest acc",
    "macro-F1",
    "found-only acc",
    "dedup acc",
    "Public+Private acc",
    "FER+ acc",
    "val acc",
]
FAMILY_ORDER = {"2d": 0, "3d": 1, "fusion": 2}


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f}%"


def comparison_rows(results: dict[str, dict]) -> list[list[str]]:
    """One row per model and fusion (metrics/eval/<name>.json contents), best first within each family."""
    ordered = sorted(
        results.items(),
        key=lambda kv: (FAMILY_ORDER.get(kv[1]["family"], 3), -kv[1]["scores"]["test"]["accuracy"], kv[0]),
    )
    rows = []
    for name, r in ordered:
        s = r["scores"]
        rows.append(
            [
                name,
                r["family"],
                _pct(s["test"]["accuracy"]),
                _pct(s["test"]["macro_f1"]),
                _pct(s["found_only"]["accuracy"]),
                _pct(s["dedup"]["accuracy"]),
                _pct(s["public_private"]["accuracy"]),
                _pct(s["ferplus"]["accuracy"] if s["ferplus"] else None),
                _pct(r.get("val_acc")),
            ]
        )
    return rows


def comparison_notes(sizes: dict[str, int], classes: tuple[str, ...] = EMOTIONS, labels: str = "fer2013") -> str:
    labelled = (
        "FER+ majority labels (rows without a majority, or whose majority is unknown / not a face, left out)"
        if labels == "ferplus"
        else "FER2013 labels"
    )
    ferplus = (
        f"FER+: the {sizes['ferplus']:,} PrivateTest images whose most-voted FER+ emotion is one of the 7 classes"
        if labels == "fer2013"
        else "FER+: (the labels are FER+'s)"
    )
    return (
        f"{labelled}. PrivateTest: {sizes['test']:,} images, all of them for every model; found-only: the "
        f"{sizes['found']:,} where MediaPipe found a face; dedup: the {sizes['dedup']:,} whose pixels are not in "
        f"Training; Public+Private: {sizes['public_private']:,} (PublicTest is the validation split every model "
        f"was selected on); {ferplus}. 3D models answer faces MediaPipe missed with their training class prior. "
        f"Classes: {', '.join(classes)}."
    )


def comparison_markdown(
    results: dict[str, dict], sizes: dict[str, int], classes: tuple[str, ...] = EMOTIONS, labels: str = "fer2013"
) -> str:
    """The comparison table, one row per model (and the fusion rows), best first within each family."""
    lines = ["| " + " | ".join(COMPARISON_HEAD) + " |", "|" + "---|" * len(COMPARISON_HEAD)]
    lines += ["| " + " | ".join(r) + " |" for r in comparison_rows(results)]
    return "\n".join(lines) + "\n\n" + comparison_notes(sizes, classes, labels) + "\n"
