"""data.source folder:PATH: a labelled face folder made from real FER2013 rows (other class names,
sizes, colours and formats; some faces set in larger pictures so that they must be found) runs the
whole pipeline, in the <class>/* layout (seeded, group-aware split) and the <split>/<class>/*
layout, and every stage follows the folder's own 5 classes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fer3d.config import SPLITS, TEST
from fer3d.io import load_npz
from fer3d.models.model_file import read_model_file
from tests.conftest import MODEL_NAMES, project_copy, requires_data, run_dvc
from tests.integration.models_fixture import QUIET, TINY_PIPELINE, fer3d_cli
from tests.integration.test_predict import sample_photo

pytestmark = [requires_data, pytest.mark.slow]
FOLDER_CLASSES = {0: "Anger", 3: "HA", 4: "sadness", 5: "surprised", 6: "NE"}  # FER2013 label -> folder name
CLASSES = ["angry", "happy", "sad", "surprise", "neutral"]
PER_CLASS = 36


def write_face(path, crop: np.ndarray, k: int) -> None:
    """Most faces as crops (48 px gray PNG, 96 px colour JPEG); every 4th set in a larger picture."""
    import cv2

    if k % 4 == 3:
        canvas = np.full((240, 260, 3), 128, np.uint8)
        canvas[50:170, 70:190] = cv2.cvtColor(
            cv2.resize(crop, (120, 120), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR
        )
        cv2.imwrite(str(path.with_suffix(".png")), canvas)
    elif k % 4 == 1:
        cv2.imwrite(str(path.with_suffix(".jpg")), cv2.cvtColor(cv2.resize(crop, (96, 96)), cv2.COLOR_GRAY2BGR))
    else:
        cv2.imwrite(str(path.with_suffix(".png")), crop)


@pytest.fixture(scope="module")
def faces(fer_full) -> dict[int, np.ndarray]:
    return {c: np.flatnonzero(fer_full.label == c)[:PER_CLASS] for c in FOLDER_CLASSES}


@pytest.fixture(scope="module")
def class_layout(fer_full, faces, tmp_path_factory):
    root = tmp_path_factory.mktemp("class_layout")
    for c, rows in faces.items():
        for k, row in enumerate(rows):
            d = root / FOLDER_CLASSES[c] / f"subject{k % 12:02d}"
            d.mkdir(parents=True, exist_ok=True)
            write_face(d / f"img{row}", fer_full.images[row], k)
    shutil.copy(sample_photo(), root / "NE" / "subject00" / "grace_hopper.jpg")
    return root


@pytest.fixture(scope="module")
def folder_repo(class_layout, tmp_path_factory):
    overrides = {
        **TINY_PIPELINE,
        "data.limit": 0,
        "data.source": f"folder:{class_layout}",
        "data.group": r"subject(\d+)",
    }
    repo = project_copy(tmp_path_factory.mktemp("folder_repo"), overrides)
    run_dvc(repo, "repro", env=QUIET)
    return repo


def test_download_reports_the_folder_its_classes_and_what_was_dropped(folder_repo):
    data = json.loads((folder_repo / "metrics" / "data.json").read_text())
    assert data["classes"] == CLASSES and data["images"] == 5 * PER_CLASS + 1
    dropped = sum(d["count"] for d in data["dropped"].values())
    assert set(data["dropped"]) <= {"no face found"} and dropped < 25  # most faces in pictures are found
    assert data["rows"] == data["images"] - dropped
    fer = load_npz(folder_repo / "data" / "fer2013.npz")
    assert [str(c) for c in fer["classes"]] == CLASSES and fer["images"].shape[1:] == (48, 48)
    assert all((fer["split"] == s).sum() >= 10 for s in range(len(SPLITS)))


def test_every_stage_follows_the_folders_classes(folder_repo):
    for name in MODEL_NAMES:
        payload = read_model_file(folder_repo / "models" / f"{name}.pt")
        assert payload["classes"] == CLASSES and len(payload["prior"]) == 5, name
    fer = load_npz(folder_repo / "data" / "fer2013.npz")
    summary = json.loads((folder_repo / "metrics" / "summary.json").read_text())
    assert summary["classes"] == CLASSES and summary["subset_sizes"]["test"] == int((fer["split"] == TEST).sum())
    test = json.loads((folder_repo / "metrics" / "eval" / "fusion.json").read_text())["scores"]["test"]
    assert list(test["per_class"]) == CLASSES and np.array(test["confusion"]).shape == (5, 5)
    assert json.loads((folder_repo / "models" / "fusion.json").read_text())["classes"] == CLASSES
    landmarks = json.loads((folder_repo / "metrics" / "landmarks.json").read_text())
    assert list(landmarks["per_class"]) == CLASSES
    assert "surprise" in (folder_repo / "reports" / "report.md").read_text()


def test_predict_with_the_folder_trained_models(folder_repo, tmp_path):
    out = tmp_path / "p.json"
    result = fer3d_cli(folder_repo, "predict", str(sample_photo()), "--models", "cnn,fusion", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    face = json.loads(out.read_text())["files"][0]["faces"][0]
    assert list(face["predictions"]["fusion"]["probabilities"]) == CLASSES


def test_split_layout_runs_too(folder_repo, fer_full, faces, tmp_path):
    """<split>/<class>/*: the folder's test split is the test split; validation comes from train."""
    root = tmp_path / "split_layout"
    for c, rows in faces.items():
        for k, row in enumerate(rows):
            d = root / ("test" if k % 3 == 0 else "train") / FOLDER_CLASSES[c]
            d.mkdir(parents=True, exist_ok=True)
            write_face(d / f"img{row}", fer_full.images[row], 0)  # crops: nothing dropped
    result = run_dvc(folder_repo, "exp", "run", "-S", f"data.source=folder:{root}", "-S", "data.group=", env=QUIET)
    assert "Running stage 'download'" in result.stdout
    fer = load_npz(folder_repo / "data" / "fer2013.npz")
    assert int((fer["split"] == TEST).sum()) == 5 * len(range(0, PER_CLASS, 3))
    summary = json.loads((folder_repo / "metrics" / "summary.json").read_text())
    assert summary["classes"] == CLASSES and summary["subset_sizes"]["test"] == 5 * len(range(0, PER_CLASS, 3))
