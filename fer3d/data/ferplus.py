"""FER+ (Barsoum et al. 2016): ten annotators' votes for every FER2013 row, from Microsoft's
fer2013new.csv, joined to FER2013 by row position (the file's image names are not row numbers)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .fer2013 import TOTAL_ROWS, DataError

FILE_NAME = "fer2013new.csv"
COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
# FER+ emotion columns → FER2013's class indices (contempt, unknown and not-a-face have none)
TO_FER2013 = {"neutral": 6, "happiness": 3, "surprise": 5, "sadness": 4, "anger": 0, "disgust": 1, "fear": 2}


def find(search_dirs: list[Path]) -> Path | None:
    """The first fer2013new.csv in `search_dirs`, None if there is none."""
    return next((d / FILE_NAME for d in search_dirs if (d / FILE_NAME).is_file()), None)


def read_votes(path: Path, n_rows: int = TOTAL_ROWS) -> np.ndarray:
    """uint8 (n_rows, 10) vote counts in COLUMNS order; errors name the file, row and what was found."""
    votes = np.zeros((n_rows, len(COLUMNS)), np.uint8)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: expected FER+ vote columns {list(COLUMNS)}, missing {missing}")
        n = -1
        for n, row in enumerate(reader):
            if n >= n_rows:
                raise DataError(f"{path}: more than the {n_rows:,} rows FER2013 has")
            try:
                votes[n] = [int(row[c] or 0) for c in COLUMNS]
            except ValueError as e:
                raise DataError(f"{path}: data row {n + 1} has a vote that is not a whole number ({e})") from e
    if n + 1 != n_rows:
        raise DataError(f"{path}: {n + 1:,} data rows, expected {n_rows:,} (one per FER2013 row)")
    return votes


def top_vote_label(votes: np.ndarray) -> np.ndarray:
    """Per row, the FER2013 class of the most-voted FER+ column, -1 where that column is contempt,
    unknown or not-a-face or nobody voted (the evaluate stage's FER+ agreement column)."""
    top = votes.argmax(1)
    mapping = np.array([TO_FER2013.get(c, -1) for c in COLUMNS])
    return np.where(votes.max(1) > 0, mapping[top], -1).astype(np.int64)
