"""`dvc exp run -S data.labels=ferplus -S train.soft_labels=true` on a tiny real pipeline: every
stage follows the label set's 8 classes (model files, metrics, fusion, report, predict), rows
without a FER+ majority are left out of every scored subset, and the label change retrains and
re-scores without redoing the data stages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer3d.config import TEST
from fer3d.data.labels import LABEL_SETS
from fer3d.io import load_npz
from fer3d.models.model_file import read_model_file
from tests.conftest import MODEL_NAMES, project_copy, ran_stages, requires_data, run_dvc
from tests.integration.models_fixture import QUIET, TINY_PIPELINE, fer3d_cli

pytestmark = [requires_data, pytest.mark.slow]
CLASSES = list(LABEL_SETS["ferplus"])


@pytest.fixture(scope="module")
def ferplus_repo(tmp_path_factory):
    repo = project_copy(tmp_path_factory.mktemp("ferplus_repo"), TINY_PIPELINE)
    run_dvc(repo, "repro", "download", "landmarks", "meshes", "voxelize", env=QUIET)
    result = run_dvc(repo, "exp", "run", "-S", "data.labels=ferplus", "-S", "train.soft_labels=true", env=QUIET)
    return repo, result


def test_the_label_change_retrains_without_redoing_the_data_stages(ferplus_repo):
    _, result = ferplus_repo
    ran = ran_stages(result.stdout)
    assert {"evaluate", "report"} <= ran and {f"train_2d@{m}" for m in ("cnn", "resnet", "vgg")} <= ran
    assert not ran & {"download", "landmarks", "meshes", "voxelize"}, ran


def test_model_files_and_fusion_have_the_8_classes(ferplus_repo):
    repo, _ = ferplus_repo
    for name in MODEL_NAMES:
        payload = read_model_file(repo / "models" / f"{name}.pt")
        assert payload["classes"] == CLASSES, name
        assert len(payload["prior"]) == 8 and abs(sum(payload["prior"]) - 1) < 1e-6
        assert payload["training"]["config"]["soft_labels"] is True
    fusion = json.loads((repo / "models" / "fusion.json").read_text())
    assert fusion["classes"] == CLASSES


def test_metrics_score_only_rows_with_a_ferplus_majority(ferplus_repo):
    repo, _ = ferplus_repo
    fer = load_npz(repo / "data" / "fer2013.npz")
    from fer3d.data.labels import ferplus_majority

    majority = ferplus_majority(load_npz(repo / "data" / "ferplus.npz")["votes"])
    kept_test = int(((fer["split"] == TEST) & (majority >= 0)).sum())
    assert 0 < kept_test < int((fer["split"] == TEST).sum())
    summary = json.loads((repo / "metrics" / "summary.json").read_text())
    assert summary["labels"] == "ferplus" and summary["classes"] == CLASSES
    assert summary["subset_sizes"]["test"] == kept_test and summary["subset_sizes"]["ferplus"] == 0
    for name in [*MODEL_NAMES, "fusion"]:
        test = json.loads((repo / "metrics" / "eval" / f"{name}.json").read_text())["scores"]["test"]
        assert test["images"] == kept_test and list(test["per_class"]) == CLASSES
        assert np.array(test["confusion"]).shape == (8, 8)
    assert "FER+ majority labels" in (repo / "metrics" / "comparison.md").read_text()
    assert "contempt" in (repo / "reports" / "report.md").read_text()


def test_predict_answers_with_the_8_classes(ferplus_repo, tmp_path):
    import cv2

    repo, _ = ferplus_repo
    fer = load_npz(repo / "data" / "fer2013.npz")
    crop = tmp_path / "face.png"
    cv2.imwrite(str(crop), fer["images"][np.flatnonzero(fer["split"] == TEST)[0]])
    out = tmp_path / "p.json"
    result = fer3d_cli(repo, "predict", "--crops", str(crop), "--models", "cnn,landmark_mlp,fusion", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    face = json.loads(out.read_text())["files"][0]["faces"][0]
    for name in ("cnn", "landmark_mlp", "fusion"):
        assert list(face["predictions"][name]["probabilities"]) == CLASSES
