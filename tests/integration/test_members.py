"""`models.landmark_mlp.members`: the training stage on the tiny pipeline's real FaceMesh points
writes one model file holding the ensemble, which every reader scores as the mean of its members'
probabilities: the torch Classifier, and the ONNX graph the evaluate stage runs on CPU."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from fer3d.inference.classifier import Classifier
from fer3d.inference.onnx_export import bulk_classifier
from fer3d.io import load_npz
from fer3d.models.model_file import read_model_file
from tests.conftest import requires_data
from tests.integration.models_fixture import QUIET

pytestmark = [requires_data, pytest.mark.slow]


def test_an_ensemble_trains_in_one_file_and_scores_as_its_members_mean(tiny_repo, tmp_path):
    repo = shutil.copytree(tiny_repo, tmp_path / "repo", symlinks=True, ignore=shutil.ignore_patterns("checkpoints"))
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["models"]["landmark_mlp"].update(members=2, epochs=3)
    params["epochs"] = 3  # the top-level count is the most any model trains (the tiny run's is 1)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, **QUIET}
    env.pop("FER3D_ROOT", None)
    done = subprocess.run(
        [sys.executable, "-m", "stages.train", "landmark_mlp"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]

    path = repo / "models" / "landmark_mlp.pt"
    payload = read_model_file(path)
    assert payload["options"]["members"] == 2
    single = read_model_file(tiny_repo / "models" / "landmark_mlp.pt")
    metrics = yaml.safe_load((repo / "metrics" / "train" / "landmark_mlp.json").read_text())
    # two MLPs after the shared (parameter-free) input standardisation: twice the parameters
    before = yaml.safe_load((tiny_repo / "metrics" / "train" / "landmark_mlp.json").read_text())
    assert metrics["parameters"] == 2 * before["parameters"]
    assert metrics["epochs_run"] == 3 and "members" not in single["options"]
    w0, w1 = payload["state_dict"]["mlp.0.0.weight"], payload["state_dict"]["mlp.1.0.weight"]
    assert w0.shape == w1.shape and not torch.equal(w0, w1)

    found = load_npz(repo / "data" / "landmarks.npz")
    rows = np.flatnonzero(found["found"])[:40]
    points = found["landmarks"][rows].astype(np.float32)
    classifier = Classifier.from_file(path)
    proba = classifier.predict_proba(points=points, has_mesh=np.ones(len(rows), bool))
    assert proba.shape == (40, 7)
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-5)

    # the same faces through each member alone, flip-averaged as the Classifier does: their mean
    model, x = classifier.model.eval(), classifier.encode(points=points)
    with torch.no_grad():
        views = [model.encode(v) for v in (x, classifier.mirror(x))]
        members = [np.mean([m(z).softmax(-1).numpy() for z in views], 0) for m in model.mlp]
    np.testing.assert_allclose(proba, np.mean(members, 0), atol=1e-5)
    assert np.abs(members[0] - members[1]).max() > 1e-3  # two models, not one twice

    onnx = bulk_classifier(path, torch.device("cpu"), "onnx")
    np.testing.assert_allclose(onnx.predict_proba(points=points, has_mesh=np.ones(len(rows), bool)), proba, atol=1e-4)
