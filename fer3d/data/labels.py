"""The label set the models learn on FER2013's images (params `data.labels`):

- fer2013: the source's own labels: FER2013's 7, or a folder source's classes (data.source folder:PATH).
- ferplus: FER+'s 10-annotator relabelling (Barsoum et al. 2016), 8 classes (FER2013's 7 and
  contempt), by the majority rule of the FER+ reference code (microsoft/FERPlus, ferplus.py): single
  votes are dropped as outliers, then an emotion is a row's label when it holds more than half of the
  remaining votes; rows whose majority is unknown or not-a-face, and rows with no majority, are left
  out (label -1). `soft` is each kept row's remaining votes over the 8 emotions, normalised: the
  target of `train.soft_labels`. It is near, not equal to, the reference's "crossentropy" target,
  which keeps only the top emotions (at most three, until they hold 75% of the votes; its
  "probability" mode then draws one of those per sample): neither cut is made here.

Every stage that needs labels takes them from here, so the number and names of the classes follow
the label set everywhere (model files, metrics, fusion, reports)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import EMOTIONS, Paths, class_names
from ..io import load_npz
from ..params import ParamError
from .ferplus import COLUMNS

LABEL_SETS = {"fer2013": EMOTIONS, "ferplus": (*EMOTIONS, "contempt")}
DROPPED = -1
# FER+'s emotion columns in the ferplus class order (EMOTIONS, then contempt)
_FERPLUS_COLUMN_OF = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "sad": "sadness",
    "surprise": "surprise",
    "neutral": "neutral",
    "contempt": "contempt",
}


@dataclass
class Labels:
    name: str
    classes: tuple[str, ...]
    label: np.ndarray  # int64 (N,), DROPPED for rows the label set leaves out
    soft: np.ndarray  # float32 (N, C): the target distribution (one-hot for fer2013)

    @property
    def kept(self) -> np.ndarray:
        return self.label != DROPPED


def without_single_votes(votes: np.ndarray) -> np.ndarray:
    """The FER+ reference's outlier removal: a column with one vote counts as none."""
    votes = np.asarray(votes, np.int64)
    return np.where(votes > 1, votes, 0)


def ferplus_majority(votes: np.ndarray) -> np.ndarray:
    """int64 (N,) FER+ majority label in LABEL_SETS["ferplus"] order, DROPPED where no column holds
    more than half of the (non-single) votes or the majority says unknown / not a face."""
    votes = without_single_votes(votes)
    emotion_cols = [COLUMNS.index(_FERPLUS_COLUMN_OF[c]) for c in LABEL_SETS["ferplus"]]
    top = votes.argmax(1)
    majority = (2 * votes.max(1) > votes.sum(1)) & (votes.sum(1) > 0)
    class_of_column = np.full(len(COLUMNS), DROPPED)
    class_of_column[emotion_cols] = np.arange(len(emotion_cols))
    return np.where(majority, class_of_column[top], DROPPED).astype(np.int64)


def ferplus_soft(votes: np.ndarray) -> np.ndarray:
    """float32 (N, 8): each row's non-single votes over the 8 emotions, normalised (zeros where none)."""
    cols = [COLUMNS.index(_FERPLUS_COLUMN_OF[c]) for c in LABEL_SETS["ferplus"]]
    v = without_single_votes(votes)[:, cols].astype(np.float32)
    return v / np.maximum(v.sum(1, keepdims=True), 1)


def build(
    name: str, fer2013_label: np.ndarray, votes: np.ndarray | None, source_classes: tuple[str, ...] = EMOTIONS
) -> Labels:
    """`source_classes`: the class names of the stored labels (a folder source's own classes)."""
    if name not in LABEL_SETS:
        raise ParamError(f"params.yaml: data.labels must be one of {sorted(LABEL_SETS)}, found {name!r}")
    classes = tuple(source_classes) if name == "fer2013" else LABEL_SETS[name]
    if name == "fer2013":
        label = np.asarray(fer2013_label, np.int64)
        return Labels(name, classes, label, np.eye(len(classes), dtype=np.float32)[label])
    if votes is None:
        raise ParamError(
            "params.yaml: data.labels is ferplus, but the download stage found no FER+ votes "
            "(fer2013new.csv beside fer2013.csv in data.shared_dir or data/raw/; see its warning); once the "
            "file is there, `dvc repro -f download` reads it (DVC does not watch for it)"
        )
    label = ferplus_majority(votes)
    return Labels(name, classes, label, ferplus_soft(votes))


def load(paths: Paths, name: str) -> Labels:
    """The label set `name` for the rows of data/fer2013.npz (votes from data/ferplus.npz)."""
    fer = load_npz(paths.fer2013)
    votes = None
    if name != "fer2013":
        stored = load_npz(paths.ferplus)
        votes = stored["votes"] if bool(stored["available"]) else None
    return build(name, fer["label"], votes, class_names(fer))
