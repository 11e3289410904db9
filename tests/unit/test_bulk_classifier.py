"""fer3d.inference.onnx_export.bulk_classifier, what the evaluate_shifts stage scores with: on CPU
the model file exported in memory and run by onnxruntime (the same probabilities as torch's
Classifier, nothing written), torch where the export is slower or on request; and the torch
Classifier's image models in channels-last layout give the same probabilities as the plain layout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from fer3d.evaluation.shifts import Shift
from fer3d.inference import Classifier, OnnxClassifier, onnx_export
from fer3d.inference.onnx_export import bulk_classifier
from tests.unit.model_files import make_model_file, mean_face

CPU = torch.device("cpu")


def crops(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def test_on_cpu_auto_runs_onnx_with_torchs_probabilities_and_writes_nothing(tmp_path):
    path = make_model_file(tmp_path, "cnn")
    bulk = bulk_classifier(path, CPU)
    assert isinstance(bulk, OnnxClassifier)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn.pt"]
    torch_proba = Classifier.from_file(path).predict_proba(crops=crops(300))
    onnx_proba = bulk.predict_proba(crops=crops(300))
    np.testing.assert_allclose(onnx_proba, torch_proba, atol=1e-5)
    assert (onnx_proba.argmax(1) == torch_proba.argmax(1)).all()
    assert bulk.classes == Classifier.from_file(path).classes


def test_a_per_image_normalised_model_file_exports_and_ignores_contrast(tmp_path):
    """image_norm: per_image lives in the model file: the torch Classifier and its ONNX export give
    the same probabilities, and a crop with its contrast lowered (the shift suite's contrast:0.6,
    rounded to uint8 again) gets nearly the same answer."""
    path = make_model_file(tmp_path, "resnet", options={"image_norm": "per_image"})
    faces = crops(200, seed=1)
    flatter = Shift.parse("contrast:0.6")(faces)
    torch_model = Classifier.from_file(path)
    torch_proba = torch_model.predict_proba(crops=faces)
    np.testing.assert_allclose(bulk_classifier(path, CPU).predict_proba(crops=faces), torch_proba, atol=1e-5)
    np.testing.assert_allclose(torch_model.predict_proba(crops=flatter), torch_proba, atol=5e-3)


def test_a_3d_model_keeps_its_prior_for_faces_without_a_mesh(tmp_path):
    prior = [0.1, 0.05, 0.15, 0.3, 0.15, 0.1, 0.15]
    path = make_model_file(tmp_path, "landmark_mlp", prior=prior)
    rng = np.random.default_rng(0)
    points = (20 * mean_face()[None] + rng.normal(scale=0.4, size=(6, 478, 3)) + 24).astype(np.float32)
    has_mesh = np.array([True, False, True, True, False, True])
    bulk = bulk_classifier(path, CPU)
    assert isinstance(bulk, OnnxClassifier)
    out = bulk.predict_proba(points=points, has_mesh=has_mesh)
    np.testing.assert_allclose(out[~has_mesh], np.tile(np.float32(prior), (2, 1)))
    reference = Classifier.from_file(path).predict_proba(points=points, has_mesh=has_mesh)
    np.testing.assert_allclose(out, reference, atol=1e-5)


def test_torch_where_asked_or_where_the_export_is_slower(tmp_path, monkeypatch):
    path = make_model_file(tmp_path, "landmark_mlp")
    assert isinstance(bulk_classifier(path, CPU, "torch"), Classifier)
    assert isinstance(bulk_classifier(path, CPU, "onnx"), OnnxClassifier)
    monkeypatch.setattr(onnx_export, "TORCH_FASTER_ON_CPU", ("landmark_mlp",))
    assert isinstance(bulk_classifier(path, CPU), Classifier)
    assert isinstance(bulk_classifier(path, CPU, "onnx"), OnnxClassifier)
    with pytest.raises(ValueError, match="backend must be one of .*found 'tensorrt'"):
        bulk_classifier(path, CPU, "tensorrt")


def test_channels_last_image_models_give_the_plain_layouts_probabilities(tmp_path):
    classifier = Classifier.from_file(make_model_file(tmp_path, "resnet"))
    conv = next(m for m in classifier.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    fast = classifier.predict_proba(crops=crops(64, seed=3))
    classifier.model.to(memory_format=torch.contiguous_format)
    np.testing.assert_allclose(fast, classifier.predict_proba(crops=crops(64, seed=3)), atol=1e-5)


def test_the_stage_names_a_bad_backend_before_any_work(tmp_path):
    root = Path(__file__).resolve().parents[2]
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["shifts"]["backend"] = "tensorrt"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "FER3D_ROOT": str(tmp_path), "FER3D_TRACKING": "off"}
    run = subprocess.run(
        [sys.executable, "-m", "stages.evaluate_shifts"], cwd=root, env=env, capture_output=True, text=True
    )
    assert run.returncode != 0
    assert "shifts.backend must be one of auto, torch, onnx, found 'tensorrt'" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "metrics").exists()
