"""fer3d.evaluation.metrics.paired_difference: the accuracy lead of one predictor over another on the
same images, with a bootstrap interval that only the images they disagree on can widen."""

from __future__ import annotations

import re

import numpy as np
import pytest

from fer3d.evaluation.metrics import paired_difference


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
