"""Test-time views beyond the flip (a model file's `tta_shift`, issue 13): the four shifted views
are training's reflect-padded shifts at fixed offsets, the Classifier averages all ten views of a
real face, the exported ONNX graph gives the same probabilities, and a file without the key scores
exactly as the flip average did."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fer3d.inference import Classifier
from fer3d.inference.onnx_export import export_model
from fer3d.inference.onnx_runtime import OnnxClassifier
from fer3d.models.inputs import flip_images, shifted_views, view_offsets
from fer3d.models.model_file import read_model_file
from fer3d.training.augment import shift
from tests.unit.model_files import make_model_file

PX = 2


@pytest.fixture(scope="module")
def crops(fer_small) -> np.ndarray:
    return fer_small.images[:12]


def test_the_shifted_views_are_trainings_shifts_at_fixed_offsets(crops):
    x = torch.from_numpy(crops).float()[:, None] / 255
    views = shifted_views(x, PX)
    for view, (dy, dx) in zip(views, view_offsets(PX)):
        assert torch.equal(view, shift(x, PX, offsets=torch.tensor([[PX + dy, PX + dx]]).expand(len(x), 2)))
    # each view is the face moved by PX pixels, the uncovered edge reflected
    assert torch.equal(views[0][..., PX:, :], x[..., :-PX, :]) and torch.equal(views[1][..., :-PX, :], x[..., PX:, :])
    assert torch.equal(views[2][..., PX:], x[..., :-PX]) and torch.equal(views[3][..., :-PX], x[..., PX:])
    assert not any(torch.equal(v, x) for v in views)


def test_the_classifier_averages_ten_views_of_a_real_face(tmp_path, crops):
    path = make_model_file(tmp_path / "views", "cnn", tta_shift=PX)
    assert read_model_file(path)["tta_shift"] == PX
    classifier = Classifier.from_file(path)
    x = classifier.encode(crops=crops)
    views = [x, *shifted_views(x, PX)]
    views += [flip_images(v) for v in views]
    with torch.no_grad():
        expected = torch.stack([classifier.model.eval()(v).softmax(1) for v in views]).mean(0).numpy()
    got = classifier.predict_proba(crops=crops)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # the same weights without the views answer differently
    flip_only = Classifier.from_file(make_model_file(tmp_path / "flip", "cnn"))
    assert np.abs(flip_only.predict_proba(crops=crops) - got).max() > 1e-4


def test_a_file_without_the_key_scores_as_the_flip_average_did(tmp_path, crops):
    path = make_model_file(tmp_path, "cnn")
    assert "tta_shift" not in read_model_file(path)  # files keep the bytes they had
    classifier = Classifier.from_file(path)
    assert classifier.tta_shift == 0
    x = classifier.encode(crops=crops)
    with torch.no_grad():
        model = classifier.model.eval()
        before = ((model(x).float().softmax(1) + model(flip_images(x)).float().softmax(1)) / 2).numpy()
    np.testing.assert_array_equal(classifier.predict_proba(crops=crops), before)  # bit for bit


def test_the_onnx_graph_holds_the_views(tmp_path, crops):
    path = make_model_file(tmp_path, "cnn", tta_shift=PX)
    info = export_model(path, tmp_path / "cnn.onnx")
    exported = OnnxClassifier.from_file(info["path"])
    assert f"views shifted {PX} px up, down, left, right (edges reflected)" in exported.meta["in_graph"]
    assert exported.meta["in_graph"].index("flip average") == exported.meta["in_graph"].index("softmax") - 1
    np.testing.assert_allclose(
        exported.predict_proba(crops=crops), Classifier.from_file(path).predict_proba(crops=crops), atol=1e-4
    )


def test_a_file_with_views_a_model_cannot_have_is_refused_naming_it(tmp_path):
    path = make_model_file(tmp_path, "landmark_mlp", tta_shift=PX)
    with pytest.raises(ValueError, match=f"{path}: tta_shift must be 1-8 px on an image model; this landmarks model"):
        Classifier.from_file(path)
