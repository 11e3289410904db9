"""fer3d.evaluation.metrics.paired_difference: the accuracy lead of one predictor over another on the
same images, with a bootstrap interval that only the images they disagree on can widen; and
paired_score_difference, the same for per-image shares such as the shifted versions right."""

from __future__ import annotations

import re

import numpy as np
import pytest

from fer3d.evaluation.metrics import paired_difference, paired_score_difference


def test_the_same_answers_differ_by_nothing():
    right = np.random.default_rng(0).random(500) < 0.7
    assert paired_difference(right, right) == {
        "difference": 0.0,
        "interval_95": [0.0, 0.0],
        "only_a_right": 0,
        "only_b_right": 0,
        "images": 500,
    }


def test_a_lead_on_a_few_disagreements_is_measured_and_bounded():
    b = np.random.default_rng(1).random(3000) < 0.7
    a = b.copy()
    wrong_b = np.flatnonzero(~b)
    right_b = np.flatnonzero(b)
    a[wrong_b[:150]] = True  # A also gets 150 of B's misses
    a[right_b[:30]] = False  # and misses 30 that B gets
    out = paired_difference(a, b, resamples=2000, seed=3)
    assert out["difference"] == pytest.approx(120 / 3000, abs=1e-5)
    assert (out["only_a_right"], out["only_b_right"], out["images"]) == (150, 30, 3000)
    low, high = out["interval_95"]
    assert 0 < low < 0.04 < high < 0.06  # clear of zero, around the lead
    # only the 180 disagreements vary: the interval is much narrower than one accuracy's own (±1.6 points)
    assert high - low < 0.02
    assert paired_difference(a, b, resamples=2000, seed=3) == out  # seeded
    flipped = paired_difference(b, a, resamples=2000, seed=3)
    assert flipped["difference"] == -out["difference"]


@pytest.mark.parametrize(
    "a,b,found",
    [
        (np.ones(3, bool), np.ones(4, bool), "bool(3,) and bool(4,)"),
        (np.ones(3), np.ones(3, bool), "float64(3,) and bool(3,)"),
        (np.ones(0, bool), np.ones(0, bool), "bool(0,) and bool(0,)"),
    ],
)
def test_vectors_that_cannot_be_paired_are_refused(a, b, found):
    with pytest.raises(ValueError, match=re.escape(f"two boolean vectors of one non-zero length, found {found}")):
        paired_difference(a, b)


def test_scores_differ_like_right_and_wrong_do():
    """paired_score_difference on 0/1 scores is paired_difference; on shares it bounds their mean."""
    rng = np.random.default_rng(2)
    a, b = rng.random(800) < 0.72, rng.random(800) < 0.68
    right_wrong = paired_difference(a, b, resamples=500, seed=1)
    scores = paired_score_difference(a.astype(float), b.astype(float), resamples=500, seed=1)
    assert scores == {k: right_wrong[k] for k in ("difference", "interval_95", "images")}
    # eight shifted versions per face: A keeps one more of them right on a quarter of the faces
    share_b = rng.integers(0, 8, 800) / 8
    share_a = np.where(np.arange(800) % 4 == 0, share_b + 1 / 8, share_b)
    out = paired_score_difference(share_a, share_b)
    assert out["difference"] == pytest.approx(1 / 32, abs=1e-5)
    assert out["interval_95"][0] > 0.02 and out["interval_95"][1] < 0.045


@pytest.mark.parametrize(
    "a,b,found",
    [
        (np.ones(3), np.ones(4), "(3,) in [1, 1] and (4,) in [1, 1]"),
        (np.full(3, 1.5), np.ones(3), "(3,) in [1.5, 1.5] and (3,) in [1, 1]"),
        (np.ones(0), np.ones(0), "(0,) and (0,)"),
    ],
)
def test_scores_outside_zero_to_one_or_unpaired_are_refused(a, b, found):
    with pytest.raises(ValueError, match=re.escape(f"scores in [0, 1], found {found}")):
        paired_score_difference(a, b)
