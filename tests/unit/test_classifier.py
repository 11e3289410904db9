"""fer3d.inference.Classifier: one model file alone → probabilities, the same in batches of any
size, the training prior for faces without a mesh; the Predictor over a copied model folder."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import torch

from fer3d.config import EMOTIONS
from fer3d.inference import Classifier, Predictor
from fer3d.inference.fusion import Fusion, save_fusions
from fer3d.models.model_file import read_model_file
from tests.unit.model_files import make_model_file, mean_face

PRIOR = [0.1, 0.05, 0.15, 0.3, 0.15, 0.1, 0.15]


def faces(n: int, seed: int = 0) -> np.ndarray:
    """Crop-frame points of n random faces around a mean face."""
    rng = np.random.default_rng(seed)
    return (20 * mean_face()[None] + rng.normal(scale=0.4, size=(n, 478, 3)) + 24).astype(np.float32)


def test_image_model_probabilities_do_not_depend_on_the_batch(tmp_path):
    crops = np.random.default_rng(0).integers(0, 256, (10, 48, 48), dtype=np.uint8)
    path = make_model_file(tmp_path, "cnn")
    one = Classifier.from_file(path, batch_size=10).predict_proba(crops=crops)
    small = Classifier.from_file(path, batch_size=3).predict_proba(crops=crops)
    assert one.shape == (10, 7) and one.dtype == np.float32
    np.testing.assert_allclose(one.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(one, small, atol=1e-6)


def test_flip_averaging_is_the_mean_of_the_two_views(tmp_path):
    crops = np.random.default_rng(1).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    plain = Classifier.from_file(make_model_file(tmp_path, "cnn"), tta_flip=False)
    flipped = plain.predict_proba(crops=crops[:, :, ::-1].copy())
    both = Classifier.from_file(tmp_path / "cnn.pt").predict_proba(crops=crops)
    np.testing.assert_allclose(both, (plain.predict_proba(crops=crops) + flipped) / 2, atol=1e-6)


def test_faces_without_a_mesh_get_the_training_prior(tmp_path):
    c = Classifier.from_file(make_model_file(tmp_path, "landmark_mlp", prior=PRIOR))
    points = faces(5)
    has_mesh = np.array([True, False, True, False, True])
    out = c.predict_proba(points=points, has_mesh=has_mesh)
    np.testing.assert_allclose(out[~has_mesh], np.tile(np.float32(PRIOR), (2, 1)))
    np.testing.assert_allclose(out[has_mesh], c.predict_proba(points=points[has_mesh]), atol=1e-6)
    # the points of faces without a mesh are never looked at (the evaluate stage stores zeros there)
    garbage = points.copy()
    garbage[~has_mesh] = np.nan
    np.testing.assert_array_equal(c.predict_proba(points=garbage, has_mesh=has_mesh), out)


def test_a_model_file_is_self_contained_and_checked(tmp_path):
    payload = read_model_file(make_model_file(tmp_path, "landmark_mlp", prior=PRIOR))
    for key in ("input_stats", "prior", "tta_flip", "landmarks", "classes"):
        assert payload[key] is not None
    assert payload["landmarks"]["attempts"][0]["pad"] == 24
    torch.save({"format": "fer3d-model-1"}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="old.pt: expected a fer3d-model-2 model file"):
        Classifier.from_file(tmp_path / "old.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch archive")
    with pytest.raises(ValueError, match="junk.pt: not a readable fer3d model file"):
        Classifier.from_file(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError, match="nothing.pt: no trained model here"):
        Classifier.from_file(tmp_path / "nothing.pt")


def test_predictor_from_a_copied_folder_with_its_fusion(tmp_path):
    project = tmp_path / "project" / "models"
    project.mkdir(parents=True)
    make_model_file(project, "cnn", prior=PRIOR)
    make_model_file(project, "landmark_mlp", prior=PRIOR, seed=1)
    rows = {"fusion": Fusion("fusion", ["cnn", "landmark_mlp"], [0.7, 0.4], ["2d", "3d"], PRIOR)}
    save_fusions(project / "fusion.json", rows, list(EMOTIONS))
    copied = shutil.copytree(project, tmp_path / "elsewhere")
    predictor = Predictor.from_dir(copied)
    assert predictor.names == ["cnn", "landmark_mlp", "fusion"]
    crops = np.random.default_rng(2).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    has_mesh = np.array([True, False, True])
    scores = predictor.predict_proba(crops, points=faces(3), has_mesh=has_mesh)
    assert set(scores.probas) == {"cnn", "landmark_mlp", "fusion"}
    np.testing.assert_allclose(scores.probas["landmark_mlp"][1], PRIOR, atol=1e-7)
    # on the face without a mesh, the fusion is the 2D member alone
    expected = rows["fusion"].combine({k: scores.probas[k] for k in ("cnn", "landmark_mlp")}, has_mesh)
    np.testing.assert_allclose(scores.probas["fusion"], expected)
    only_fusion = Predictor.from_dir(copied, ["fusion"])
    assert only_fusion.names == ["cnn", "landmark_mlp", "fusion"]
    with pytest.raises(
        ValueError, match=re.escape(f"['fusion_9']; models in {copied}: ['cnn', 'landmark_mlp'], fusions")
    ):
        Predictor.from_dir(copied, ["fusion_9"])  # the model files there, not every model the registry knows
    # a fusion file left by a run with other labels: refused, not silently applied
    reordered = [*EMOTIONS[1:], EMOTIONS[0]]
    save_fusions(copied / "fusion.json", rows, reordered)
    refused = re.escape(f"fusion.json: fitted for the classes {reordered}, the models have")
    with pytest.raises(ValueError, match=refused):
        Predictor.from_dir(copied)
    save_fusions(
        copied / "fusion.json",
        {"fusion": Fusion("fusion", ["cnn", "landmark_mlp"], [1, 1], ["2d", "3d"], [*PRIOR, 0.0])},
        [*EMOTIONS, "contempt"],
    )
    with pytest.raises(ValueError, match="fitted for the classes"):
        Predictor.from_dir(copied)
    wrong_family = Fusion("fusion", ["cnn", "landmark_mlp"], [1, 1], ["2d", "2d"], PRIOR)
    with pytest.raises(ValueError, match="says its members \\['cnn', 'landmark_mlp'\\] are \\['2d', '2d'\\]"):
        Predictor(predictor.classifiers, {"fusion": wrong_family})


def test_bad_inputs_are_refused_with_what_was_found(tmp_path):
    """Crops must be whole pixels 0..255 in (N, 48, 48): a 0..1 float image would be scored black, 300
    would wrap to 44, and another size would pass torch but not the ONNX graph."""
    c = Classifier.from_file(make_model_file(tmp_path, "cnn"))
    crops = np.random.default_rng(3).integers(0, 256, (2, 48, 48), dtype=np.uint8)
    np.testing.assert_array_equal(c.predict_proba(crops=crops.astype(np.float64)), c.predict_proba(crops=crops))
    for bad, message in (
        (crops / 255.0, "found float64 with fractions .*scale a 0..1 image by 255"),
        (crops.astype(np.int16) + 300, "pixels 0..255; found int16 from 300 to"),
        (
            np.zeros((2, 64, 64), np.uint8),
            r"cnn: crops must be 48x48 gray faces, an array \(N, 48, 48\); found shape \(2, 64, 64\)",
        ),
        (crops.astype(bool), "found dtype bool"),
        (np.full((1, 48, 48), np.nan), r"found non-finite values \(NaN or infinity\)"),
    ):
        with pytest.raises(ValueError, match=message):
            c.predict_proba(crops=bad)
    mlp = Classifier.from_file(make_model_file(tmp_path, "landmark_mlp", prior=PRIOR))
    points = faces(3)
    points[1] = 0  # how the landmarks stage stores a face FaceMesh did not find
    out = mlp.predict_proba(points=points)  # no has_mesh: the row of zeros is a face without a mesh
    np.testing.assert_allclose(out[1], PRIOR, atol=1e-7)
    np.testing.assert_array_equal(out, mlp.predict_proba(points=points, has_mesh=[True, False, True]))
    assert mlp.predict_proba(points=np.zeros((0, 478, 3), np.float32)).shape == (0, 7)  # an empty batch
    with pytest.raises(ValueError, match=r"has_mesh must be one flag per face \(3\); found shape \(2,\)"):
        mlp.predict_proba(points=points, has_mesh=[True, False])
    with pytest.raises(ValueError, match=r"points must be FaceMesh's 478 \(x, y, z\)"):
        mlp.predict_proba(points=points[:, :468])


def test_a_model_file_missing_what_its_input_needs_fails_at_load_naming_it(tmp_path):
    for name, drop, message in (
        ("cnn", ("input_stats", "std"), "cnn.pt: the model file's input_stats cannot encode a face for a image model"),
        ("landmark_mlp", ("input_stats", "mean_face"), "landmark_mlp.pt: the model file's input_stats cannot encode"),
        (
            "landmark_mlp",
            ("input_stats", "mirror_perm"),
            "landmark_mlp.pt: the model file's input_stats lack 'mirror_perm'",
        ),
        ("landmark_mlp", ("landmarks",), "landmark_mlp.pt: a landmarks model file must keep the FaceMesh settings"),
    ):
        path = make_model_file(tmp_path, name)
        payload = torch.load(path, weights_only=True)
        if len(drop) == 1:
            payload[drop[0]] = None
        else:
            del payload[drop[0]][drop[1]]
        torch.save(payload, path)
        with pytest.raises(ValueError, match=message):
            Classifier.from_file(path)


def test_a_bf16_trained_model_scores_in_bf16_where_the_cpu_has_amx(tmp_path):
    from fer3d.device import cpu_has_amx

    crops = np.random.default_rng(5).integers(0, 256, (64, 48, 48), dtype=np.uint8)
    path = make_model_file(tmp_path, "cnn", precision="bf16")
    auto = Classifier.from_file(path)
    exact = Classifier.from_file(path, precision="fp32")
    assert auto.precision == ("bf16" if cpu_has_amx() else "fp32") and exact.precision == "fp32"
    assert "precision=" in repr(auto)
    fp32 = exact.predict_proba(crops=crops)
    bf16 = Classifier.from_file(path, precision="bf16").predict_proba(crops=crops)
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(bf16.sum(1), 1, atol=1e-5)
    # 8 bits of mantissa: close to fp32's answer, not equal to it
    assert 0 < np.abs(bf16 - fp32).max() < 0.05
    np.testing.assert_array_equal(auto.predict_proba(crops=crops), bf16 if cpu_has_amx() else fp32)
    # a face's bf16 answer does not depend on the faces beside it: predict (small batches) = evaluate
    in_fives = Classifier.from_file(path, precision="bf16", batch_size=5).predict_proba(crops=crops)
    np.testing.assert_allclose(in_fives, bf16, atol=1e-6)
    # a model trained in fp32 scores in fp32 on any CPU
    assert Classifier.from_file(make_model_file(tmp_path / "fp32", "cnn")).precision == "fp32"
