"""Training chooses its epoch on the answers the finished model gives: the validation pass scores in
the model file's scoring precision (bf16 for a net trained in bf16 on a CPU with AMX tiles or on
CUDA, fp32 elsewhere), so the last validated epoch's PublicTest log-loss and accuracy in
metrics/train/<model>_curve.csv (the tiny pipeline trains one epoch) are the evaluate stage's, face
for face. Before commit d076992 validation was fp32 on every CPU and the log-loss differed."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from fer3d.config import VAL
from fer3d.device import resolve_scoring_precision
from fer3d.inference import Classifier
from fer3d.io import load_npz
from fer3d.training.loop import accuracy_and_log_loss
from tests.conftest import requires_data

pytestmark = [requires_data, pytest.mark.slow]


ROUNDING = 5.1e-6  # the curve csv keeps 5 decimals


# image models without test-time views beyond the flip (resnet's 10 views are evaluate's, not validation's)
@pytest.mark.parametrize("name", ["cnn", "vgg"])
def test_validation_scores_as_the_finished_model_does(tiny_repo, name):
    evaluated = load_npz(tiny_repo / "metrics" / "probabilities.npz")
    fer = load_npz(tiny_repo / "data" / "fer2013.npz")
    on_val = fer["split"][evaluated["rows"]] == VAL
    val = evaluated["rows"][on_val]
    y = fer["label"][val].astype(np.int64)
    accuracy, log_loss = accuracy_and_log_loss(evaluated[name][on_val], y)
    with open(tiny_repo / "metrics" / "train" / f"{name}_curve.csv") as f:
        last = list(csv.DictReader(f))[-1]
    assert float(last["val_loss"]) == pytest.approx(log_loss, abs=ROUNDING)
    assert float(last["val_acc"]) == pytest.approx(accuracy, abs=1e-5)

    trained = json.loads((tiny_repo / "metrics" / "train" / f"{name}.json").read_text())
    stage = json.loads((tiny_repo / "metrics" / "eval" / f"{name}.json").read_text())
    scoring = resolve_scoring_precision("auto", torch.device("cpu"), trained=trained["precision"])
    assert stage["scoring_precision"] == scoring
    if scoring == "bf16":  # the check tells the precisions apart: fp32 answers give another log-loss
        fp32 = Classifier.from_file(tiny_repo / "models" / f"{name}.pt", precision="fp32")
        _, fp32_log_loss = accuracy_and_log_loss(fp32.predict_proba(crops=fer["images"][val]), y)
        assert abs(fp32_log_loss - float(last["val_loss"])) > ROUNDING  # 1-epoch nets: 1e-5 to 2e-5
