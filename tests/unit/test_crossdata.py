"""Scores on other labelled sets: point estimates against scikit-learn, bootstrap intervals against a
plain resampling loop and the normal approximation, group resampling, classes a model lacks."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, recall_score

from fer3d.config import EMOTIONS
from fer3d.evaluation.crossdata import score_on_set

CLASSES = list(EMOTIONS)


def predictions(n: int, accuracy: float, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Random probabilities whose argmax is right with probability `accuracy`, and the labels."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 7, n)
    pred = np.where(rng.random(n) < accuracy, true, rng.integers(0, 7, n))
    proba = rng.random((n, 7)) * 0.5
    proba[np.arange(n), pred] += 1
    return proba / proba.sum(1, keepdims=True), [CLASSES[t] for t in true]


def reference_interval(correct_by_group: list[np.ndarray], resamples: int, seed: int) -> tuple[float, float]:
    """The textbook loop: draw groups with replacement, pool their images, take the accuracy."""
    rng = np.random.default_rng(seed)
    accs = []
    for _ in range(resamples):
        picked = [correct_by_group[g] for g in rng.integers(0, len(correct_by_group), len(correct_by_group))]
        pooled = np.concatenate(picked)
        accs.append(pooled.mean())
    return tuple(np.percentile(accs, [2.5, 97.5]))


def test_point_estimates_equal_scikit_learn():
    proba, labels = predictions(500, 0.6)
    r = score_on_set(proba, labels, CLASSES, np.arange(500))
    true = np.array([CLASSES.index(c) for c in labels])
    pred = proba.argmax(1)
    assert r["accuracy"] == pytest.approx(accuracy_score(true, pred), abs=1e-5)
    present = sorted(set(true))
    assert r["macro_f1"] == pytest.approx(f1_score(true, pred, labels=present, average="macro"), abs=1e-5)
    recalls = recall_score(true, pred, labels=present, average=None)
    assert [r["per_class_recall"][CLASSES[i]] for i in present] == pytest.approx(recalls, abs=1e-4)
    assert np.array(r["confusion"]["counts"]).sum() == 500 and r["excluded"] == {}


def test_image_bootstrap_matches_a_plain_loop_and_the_normal_approximation():
    proba, labels = predictions(800, 0.65, seed=1)
    r = score_on_set(proba, labels, CLASSES, np.arange(800), resamples=4000, seed=0)
    correct = proba.argmax(1) == np.array([CLASSES.index(c) for c in labels])
    lo, hi = r["interval_95"]["accuracy"]
    ref_lo, ref_hi = reference_interval([correct[i : i + 1] for i in range(800)], 4000, seed=7)
    assert lo == pytest.approx(ref_lo, abs=0.006) and hi == pytest.approx(ref_hi, abs=0.006)
    p = correct.mean()
    half = 1.96 * np.sqrt(p * (1 - p) / 800)
    assert lo == pytest.approx(p - half, abs=0.006) and hi == pytest.approx(p + half, abs=0.006)
    assert lo < r["accuracy"] < hi


def test_group_bootstrap_resamples_whole_groups():
    """40 subjects x 10 images, each subject mostly right or mostly wrong: the group interval is
    the loop's, and much wider than an interval that takes the 400 images as independent."""
    rng = np.random.default_rng(3)
    subject_skill = rng.random(40) < 0.6
    proba, labels = predictions(400, 0.0, seed=2)  # all wrong, then make good subjects right
    true = np.array([CLASSES.index(c) for c in labels])
    groups = np.repeat(np.arange(40), 10)
    right = subject_skill[groups] & (rng.random(400) < 0.9)
    proba[right] = np.eye(7)[true[right]]
    by_group = score_on_set(proba, labels, CLASSES, groups, resamples=4000, seed=0)
    by_image = score_on_set(proba, labels, CLASSES, np.arange(400), resamples=4000, seed=0)
    correct = proba.argmax(1) == true
    ref = reference_interval([correct[groups == g] for g in range(40)], 4000, seed=11)
    assert by_group["interval_95"]["accuracy"] == pytest.approx(ref, abs=0.015)
    width = lambda r: r["interval_95"]["accuracy"][1] - r["interval_95"]["accuracy"][0]
    assert width(by_group) > 2 * width(by_image)
    assert by_group["groups"] == 40 and by_group["accuracy"] == by_image["accuracy"]


def test_classes_the_model_lacks_are_excluded_and_absent_classes_leave_macro_f1():
    proba, labels = predictions(300, 0.7, seed=4)
    labels = ["contempt" if i % 10 == 0 else c for i, c in enumerate(labels)]
    labels = ["happy" if c == "disgust" else c for c in labels]  # the set has no disgust
    r = score_on_set(proba, labels, CLASSES, np.arange(300))
    assert r["excluded"] == {"contempt": 30} and r["images"] == 270
    assert "disgust" not in r["per_class_recall"] and "contempt" not in r["per_class_recall"]
    keep = np.array([c != "contempt" for c in labels])
    true = np.array([CLASSES.index(c) for c, k in zip(labels, keep) if k])
    present = sorted(set(true))
    assert r["macro_f1"] == pytest.approx(
        f1_score(true, proba[keep].argmax(1), labels=present, average="macro"), abs=1e-5
    )


def test_a_rare_class_left_out_of_a_resample_does_not_pull_macro_f1_down():
    """A perfect model on 97 happy and 3 fear faces: macro-F1 is 1 in every resample, whether or not
    it drew a fear face (it used to count fear as F1 0 there: [0.5, 1.0])."""
    labels = ["happy"] * 97 + ["fear"] * 3
    proba = np.eye(7)[[CLASSES.index(c) for c in labels]]
    r = score_on_set(proba, labels, CLASSES, np.arange(100), resamples=2000, seed=0)
    assert r["macro_f1"] == 1.0 and r["interval_95"]["macro_f1"] == [1.0, 1.0]


def test_one_group_gets_no_interval():
    proba, labels = predictions(50, 0.6, seed=4)
    r = score_on_set(proba, labels, CLASSES, np.zeros(50, int))
    assert r["groups"] == 1 and "interval_95" not in r and r["accuracy"] is not None


def test_the_evaluate_stage_and_a_folder_agree_on_macro_f1_when_a_class_is_missing():
    """A subset without any disgust image (a smoke run's): macro-F1 averages over the six classes it
    holds in both scorers, rather than counting disgust as F1 0 in one of them."""
    from fer3d.evaluation.metrics import score

    rng = np.random.default_rng(0)
    truth = rng.choice([0, 2, 3, 4, 5, 6], size=400)
    predicted = np.where(rng.random(400) < 0.7, truth, rng.integers(0, 7, size=400))  # some predicted disgust
    probas = np.eye(7)[predicted]
    folder = score_on_set(probas, np.array(EMOTIONS)[truth], list(EMOTIONS), np.arange(400), resamples=100)
    stage = score(truth, predicted)
    expected = f1_score(truth, predicted, labels=[0, 2, 3, 4, 5, 6], average="macro")
    assert stage["macro_f1"] == folder["macro_f1"] == pytest.approx(expected, abs=1e-5)
    assert stage["macro_f1"] > f1_score(truth, predicted, labels=range(7), average="macro", zero_division=0)
