"""fer3d.evaluation.protocol.score_model: every subset (PrivateTest, Public+Private, dedup,
found-only) is scored over the run's own classes, not FER2013's seven, so a 3-class folder source
or FER+'s 8 classes get the macro-F1 of their classes everywhere."""

import numpy as np

from fer3d.evaluation.protocol import Subsets, score_model


def test_every_subset_scores_the_label_sets_own_classes():
    classes = ("angry", "happy", "contempt")
    label = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])
    proba = np.eye(3)[label]  # a perfect model
    rows = np.arange(9)
    sets = Subsets(test=rows, public_private=rows, dedup=rows, found=rows, ferplus=rows[:0], ferplus_label=rows[:0])
    scores = score_model(proba, label, sets, classes=classes)
    for subset in ("test", "public_private", "dedup", "found_only"):
        assert scores[subset]["accuracy"] == 1.0 and scores[subset]["macro_f1"] == 1.0, subset  # was 0.43 but test
    assert scores["ferplus"] is None
