"""The shift suite in the tiny pipeline: shift_landmarks finds FaceMesh points on the shifted
images (a looser crop shrinks the face, a rotation turns it), evaluate_shifts scores every model and
fusion row on them (the plain column is the evaluate stage's accuracy, a shift's number is what the
model file gives on those shifted images), the report shows the table, and a stale suite is named."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from fer3d.config import TEST, VAL
from fer3d.evaluation import shifts
from fer3d.inference import Classifier
from fer3d.io import load_npz
from tests.conftest import requires_data
from tests.integration.models_fixture import QUIET

pytestmark = [requires_data, pytest.mark.slow]


@pytest.fixture(scope="module")
def stored(tiny_repo):
    params = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    return (
        json.loads((tiny_repo / "metrics" / "shifts.json").read_text()),
        load_npz(tiny_repo / "data" / "shift_landmarks.npz"),
        load_npz(tiny_repo / "data" / "fer2013.npz"),
        shifts.parse_suite(params["shifts"]["suite"]),
    )


def test_every_model_and_fusion_row_is_scored_under_every_shift(tiny_repo, stored):
    result, _, fer, suite = stored
    summary = json.loads((tiny_repo / "metrics" / "summary.json").read_text())
    assert result["suite"] == [s.name for s in suite] == list(shifts.DEFAULT_SUITE)
    assert set(result["models"]) == set(summary["test_acc"])
    assert result["images"] == {"test": int((fer["split"] == TEST).sum()), "val": int((fer["split"] == VAL).sum())}
    assert all(0.8 < f["test"] <= 1 and 0.8 < f["val"] <= 1 for f in result["faces_found"].values())
    for name, r in result["models"].items():
        evaluated = json.loads((tiny_repo / "metrics" / "eval" / f"{name}.json").read_text())
        assert r["test"]["plain"] == pytest.approx(evaluated["scores"]["test"]["accuracy"], abs=1e-5), name
        assert r["val"]["plain"] == pytest.approx(evaluated["val_acc"], abs=1e-5), name
        for split in ("test", "val"):
            per_shift = [r[split][s.name] for s in suite]
            assert all(0 <= a <= 1 for a in per_shift)
            assert r[split]["shifted"] == pytest.approx(np.mean(per_shift), abs=1e-5)
            assert r[split]["drop"] == pytest.approx(r[split]["plain"] - r[split]["shifted"], abs=2e-5)
        assert r["family"] == evaluated["family"]


def test_a_shift_number_is_the_model_file_on_the_shifted_images(tiny_repo, stored):
    result, points, fer, suite = stored
    test = fer["split"] == TEST
    label = fer["label"][test].astype(np.int64)
    blur = next(i for i, s in enumerate(suite) if s.name == "blur:1")
    cnn = Classifier.from_file(tiny_repo / "models" / "cnn.pt")
    proba = cnn.predict_proba(crops=suite[blur](fer["images"][test]))
    assert result["models"]["cnn"]["test"]["blur:1"] == pytest.approx((proba.argmax(1) == label).mean(), abs=1e-5)
    # a 3D model meets the shift through the points FaceMesh found on the shifted image
    mlp = Classifier.from_file(tiny_repo / "models" / "landmark_mlp.pt")
    on_test = np.isin(points["rows"], np.flatnonzero(test))
    proba = mlp.predict_proba(
        points=points["landmarks"][blur][on_test].astype(np.float32), has_mesh=points["found"][blur][on_test]
    )
    accuracy = (proba.argmax(1) == label).mean()
    assert result["models"]["landmark_mlp"]["test"]["blur:1"] == pytest.approx(accuracy, abs=1e-5)


def test_shifted_points_move_as_the_image_did(tiny_repo, stored):
    """Against the points of the unshifted images (the landmarks stage): a looser crop (zoom 1.15)
    shrinks the face by 1/1.15, a tighter one (0.85) grows it by 1/0.85, the rotation turns it by
    about ±10° (sign alternating by row), gamma leaves the geometry alone."""
    _, shifted, _, suite = stored
    plain = load_npz(tiny_repo / "data" / "landmarks.npz")
    rows = shifted["rows"]
    index = {s.name: i for i, s in enumerate(suite)}

    def both(name):
        i = index[name]
        ok = shifted["found"][i] & plain["found"][rows]
        return plain["landmarks"][rows][ok].astype(np.float64), shifted["landmarks"][i][ok].astype(np.float64), ok

    def spread(p):
        xy = p[:, :, :2] - p[:, :, :2].mean(1, keepdims=True)
        return np.sqrt((xy**2).sum(2).mean(1))

    assert shifted["found"].mean() > 0.8
    for name, factor in (("zoom:1.15", 1 / 1.15), ("zoom:0.85", 1 / 0.85)):
        before, after, _ = both(name)
        assert np.median(spread(after) / spread(before)) == pytest.approx(factor, rel=0.03), name
    before, after, ok = both("rotate:10")
    a = before[:, :, :2] - before[:, :, :2].mean(1, keepdims=True)
    b = after[:, :, :2] - after[:, :, :2].mean(1, keepdims=True)
    # the rotation that best maps a onto b, per face (2D Procrustes angle), in image coordinates
    angle = np.degrees(np.arctan2((a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]).sum(1), (a * b).sum((1, 2))))
    sign = np.where(np.flatnonzero(ok) % 2 == 0, 1, -1)  # rows alternate +10° / -10°
    assert np.median(np.abs(angle)) == pytest.approx(10, abs=2)
    assert len(set(np.sign(angle * sign))) == 1  # one consistent direction per row parity
    before, after, _ = both("gamma:0.6")
    assert np.median(np.abs(after - before)[..., :2]) < 1.0  # px


def test_report_shows_the_shift_table(tiny_repo, stored):
    result, *_ = stored
    md = (tiny_repo / "reports" / "report.md").read_text()
    section = md[md.index("Accuracy under shift (PrivateTest)") :]
    header = next(line for line in section.splitlines() if line.startswith("| model"))
    assert header.split(" | ")[1:] == ["plain", *result["suite"], "shifted", "drop |"]
    for name in result["models"]:
        assert f"| {name} |" in section


def test_a_suite_the_landmarks_were_not_made_for_is_named(tiny_repo, tmp_path):
    """params.yaml's suite changed but shift_landmarks not re-run: the stage says which to run."""
    for name in ("data", "models", "metrics", "dvc.yaml"):
        (tmp_path / name).symlink_to(tiny_repo / name)
    params = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    env = {**os.environ, **QUIET, "FER3D_ROOT": str(tmp_path)}
    for key, value, said in (("suite", ["blur:2"], "shifts.suite ['blur:2']"), ("splits", ["test"], "['test']")):
        changed = {**params, "shifts": {**params["shifts"], key: value}}
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(changed))
        run = subprocess.run(
            [sys.executable, "-m", "stages.evaluate_shifts"], cwd=tiny_repo, env=env, capture_output=True, text=True
        )
        assert run.returncode != 0
        assert said in run.stderr and "dvc repro shift_landmarks" in run.stderr
        assert "Traceback" not in run.stderr
