"""Label sets on FER2013's images: the FER+ majority rule on the real votes against a plain per-row
reading of the FER+ reference code, soft targets, and the fer2013 set unchanged."""

from pathlib import Path

import numpy as np
import pytest

from fer3d.data import ferplus
from fer3d.data.labels import DROPPED, LABEL_SETS, build, ferplus_majority, ferplus_soft
from fer3d.params import ParamError
from tests.conftest import SHARED_DATA

FERPLUS_CSV = SHARED_DATA / ferplus.FILE_NAME
pytestmark = pytest.mark.skipif(not FERPLUS_CSV.exists(), reason=f"FER+ votes not found at {FERPLUS_CSV}")
# fer2013new.csv's column names of the 8 classes, in LABEL_SETS["ferplus"] order
COLUMN_OF = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral", "contempt"]


@pytest.fixture(scope="module")
def votes() -> np.ndarray:
    return ferplus.read_votes(Path(FERPLUS_CSV))


def reference_label(row: dict[str, int]) -> int:
    """microsoft/FERPlus ferplus.py, majority mode, one row at a time: drop single votes, take the
    top column if it holds more than half of what is left, keep it only if it is an emotion."""
    kept = {c: (n if n > 1 else 0) for c, n in row.items()}
    total = sum(kept.values())
    top = max(kept, key=lambda c: (kept[c], -list(kept).index(c)))  # first column wins a tie
    if total == 0 or 2 * kept[top] <= total or top in ("unknown", "NF"):
        return DROPPED
    return COLUMN_OF.index(top)


def test_majority_rule_matches_a_plain_reading_of_the_reference(votes):
    labels = ferplus_majority(votes)
    expected = [reference_label(dict(zip(ferplus.COLUMNS, map(int, row)))) for row in votes]
    assert labels.tolist() == expected
    assert 0.85 < (labels != DROPPED).mean() < 0.92  # ~88% of the rows have an emotion majority
    assert set(np.unique(labels)) == {DROPPED, *range(8)}  # contempt (7) included


def test_rows_the_readme_describes(votes):
    labels = ferplus_majority(votes)
    assert labels[0] == DROPPED  # 4 neutral, 3 anger, 2 disgust, 1 sadness: no majority
    assert labels[1] == LABEL_SETS["ferplus"].index("neutral")  # 6 of 10 neutral
    not_faces = votes[:, ferplus.COLUMNS.index("NF")] == 10
    assert not_faces.sum() >= 173 and (labels[not_faces] == DROPPED).all()


def test_soft_targets_are_the_vote_distribution(votes):
    soft = ferplus_soft(votes)
    labels = ferplus_majority(votes)
    kept = labels != DROPPED
    assert soft.shape == (len(votes), 8) and soft.dtype == np.float32
    assert np.allclose(soft[kept].sum(1), 1, atol=1e-6)
    assert (soft[kept].argmax(1) == labels[kept]).all()


def test_label_sets(votes):
    fer_label = np.arange(len(votes)) % 7
    plain = build("fer2013", fer_label, None)
    assert plain.classes == LABEL_SETS["fer2013"] and (plain.label == fer_label).all() and plain.kept.all()
    assert (plain.soft.argmax(1) == fer_label).all()
    plus = build("ferplus", fer_label, votes)
    assert len(plus.classes) == 8 and plus.classes[-1] == "contempt"
    with pytest.raises(ParamError, match=r"data.labels must be one of \['fer2013', 'ferplus'\], found 'fer\+'"):
        build("fer+", fer_label, votes)
    with pytest.raises(ParamError, match="found no FER\\+ votes"):
        build("ferplus", fer_label, None)
