"""`fer3d evaluate-folder` on the tiny pipeline's models: a folder made from its PublicTest images
reproduces the evaluate stage's PublicTest accuracy of every model and fusion row exactly; photos
go through face detection (a picture without a face is dropped and counted); bad input is named."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fer3d.config import EMOTIONS, VAL
from fer3d.io import load_npz
from tests.conftest import requires_data
from tests.integration.models_fixture import fer3d_cli
from tests.integration.test_predict import sample_photo

pytestmark = [requires_data, pytest.mark.slow]
ALIASES = {"angry": "anger", "happy": "HA", "surprise": "surprised"}  # names other datasets use


@pytest.fixture(scope="module")
def public_folder(tiny_repo, tmp_path_factory):
    """The tiny repo's PublicTest crops as <class>/<row>.png (lossless, 48x48: taken as crops)."""
    import cv2

    root = tmp_path_factory.mktemp("publictest")
    fer = load_npz(tiny_repo / "data" / "fer2013.npz")
    for row in np.flatnonzero(fer["split"] == VAL):
        name = EMOTIONS[fer["label"][row]]
        (root / ALIASES.get(name, name)).mkdir(exist_ok=True)
        cv2.imwrite(str(root / ALIASES.get(name, name) / f"{row:05d}.png"), fer["images"][row])
    return root


@pytest.fixture(scope="module")
def public_run(tiny_repo, public_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("scores") / "scores.json"
    result = fer3d_cli(tiny_repo, "evaluate-folder", str(public_folder), "--out", str(out))
    return result, json.loads(out.read_text()) if out.exists() else None


def test_publictest_folder_reproduces_the_evaluate_stage(tiny_repo, public_run):
    result, data = public_run
    assert result.returncode == 0, result.stderr[-2000:]
    assert data["used"] == data["images"] == 60 and data["dropped"] == {}
    for name, scores in data["models"].items():
        stage = json.loads((tiny_repo / "metrics" / "eval" / f"{name}.json").read_text())
        assert scores["accuracy"] == stage["val_acc"], name
        lo, hi = scores["interval_95"]["accuracy"]
        assert lo <= scores["accuracy"] <= hi and hi - lo > 0.05  # 60 images: a wide interval
        assert scores["images"] == 60 and scores["excluded"] == {}
    assert {"fusion", "fusion_2d", "fusion_3d"} <= set(data["models"])
    assert "accuracy [95% CI]" in result.stdout and "fusion" in result.stdout


def test_photos_are_detected_and_a_faceless_picture_is_dropped(tiny_repo, public_folder, tmp_path):
    import cv2

    root = tmp_path / "photos"
    for name in ("happy", "neutral", "sad"):
        (root / name).mkdir(parents=True)
    shutil.copy(sample_photo(), root / "happy" / "grace.jpg")
    photo = cv2.imread(str(sample_photo()))
    cv2.imwrite(str(root / "neutral" / "grace_mirrored.png"), cv2.flip(photo, 1))
    ramp = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    cv2.imwrite(str(root / "sad" / "no_face.png"), ramp)
    shutil.copy(next((public_folder / "sad").iterdir()), root / "sad" / "crop.png")
    out = tmp_path / "scores.json"
    result = fer3d_cli(tiny_repo, "evaluate-folder", str(root), "--out", str(out), "--models", "cnn,landmark_mlp")
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["images"] == 4 and data["used"] == 3
    assert data["dropped"] == {"no face found": {"count": 1, "examples": ["sad/no_face.png"]}}
    assert data["mesh_found"] == 3 and set(data["models"]) == {"cnn", "landmark_mlp"}
    assert "dropped 1: no face found (e.g. sad/no_face.png)" in result.stdout


def test_groups_and_bad_input_get_clear_errors(tiny_repo, public_folder, tmp_path):
    # the tens digit of each file's row: several groups (its first two digits are "00" for all: one group)
    grouped = fer3d_cli(
        tiny_repo, "evaluate-folder", str(public_folder), "--group", r"/\d\d\d(\d)", "--models", "cnn", "--out", "-"
    )
    assert grouped.returncode == 0, grouped.stderr[-2000:]
    assert "bootstrap over groups" in grouped.stdout
    no_match = fer3d_cli(tiny_repo, "evaluate-folder", str(public_folder), "--group", "subject_", "--out", "-")
    assert no_match.returncode == 1
    assert "the group pattern 'subject_' does not match 60 of the 60 file paths" in no_match.stderr
    bad = tmp_path / "bad"
    shutil.copytree(public_folder, bad)
    (bad / "smirk").mkdir()
    unknown = fer3d_cli(tiny_repo, "evaluate-folder", str(bad), "--out", "-")
    assert unknown.returncode == 1 and f"{bad / 'smirk'}: unknown class folder name 'smirk'" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_evaluate_extra_stage_scores_the_sets_params_name(tiny_repo, public_folder, public_run, tmp_path):
    """evaluate.extra_sets names the folder: `dvc repro` runs evaluate_extra@<name> alone (nothing
    else depends on the setting), its numbers are evaluate-folder's, and new images re-score it."""
    import yaml

    from tests.conftest import ran_stages, run_dvc
    from tests.integration.models_fixture import QUIET

    repo = shutil.copytree(tiny_repo, tmp_path / "repo", symlinks=True)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["evaluate"]["extra_sets"] = {"pub": str(public_folder)}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = run_dvc(repo, "repro", env=QUIET)
    assert ran_stages(result.stdout) == {"check_params", "evaluate_extra@pub"}, result.stdout[-2000:]
    scored = json.loads((repo / "metrics" / "extra" / "pub.json").read_text())
    _, cli = public_run
    assert {n: m["accuracy"] for n, m in scored["models"].items()} == {
        n: m["accuracy"] for n, m in cli["models"].items()
    }
    assert scored["models"]["fusion"]["interval_95"] == cli["models"]["fusion"]["interval_95"]
    page = (repo / "reports" / "extra" / "pub.md").read_text()
    assert "| fusion | 60 |" in page and "95% percentile bootstrap over images" in page
    assert "up to date" in run_dvc(repo, "status", env=QUIET).stdout
    shutil.copy(next((public_folder / "sad").iterdir()), public_folder / "sad" / "copy.png")
    try:
        assert "evaluate_extra@pub" in run_dvc(repo, "status", env=QUIET).stdout
    finally:
        (public_folder / "sad" / "copy.png").unlink()
    # keys no other stage reads: check_params (it tracks the whole file) refuses them, so a typo is
    # a failed `dvc repro` (and a failed `dvc exp run`), not a run of nothing that passes
    right = (repo / "params.yaml").read_text()
    for change, message in (
        (lambda p: p.__setitem__("epoch", 1), "unknown key 'epoch'; did you mean 'epochs'?"),
        (lambda p: p["evaluate"].__setitem__("extra_groups", {"pbu": "s(\\d)"}), "extra_groups names 'pbu'"),
    ):
        wrong = yaml.safe_load(right)
        change(wrong)
        (repo / "params.yaml").write_text(yaml.safe_dump(wrong, sort_keys=False))
        failed = run_dvc(repo, "repro", env=QUIET, check=False)
        assert failed.returncode != 0 and message in failed.stderr + failed.stdout, failed.stderr[-2000:]


def test_a_split_folder_is_scored_on_its_test_split_unless_asked(tiny_repo, public_folder, tmp_path):
    """train/ and testing/ copies of the folder (the models saw neither): by default only the test
    split is scored, as the evaluate_extra stage scores it; `--split all` scores both, and the JSON
    says which; the folder's own split name is understood."""
    split_folder = tmp_path / "split"
    shutil.copytree(public_folder, split_folder / "train")
    shutil.copytree(public_folder, split_folder / "testing")
    runs, printed = {}, {}
    for split in (None, "all", "testing"):
        out = tmp_path / f"{split}.json"
        args = ["--split", split] if split else []
        result = fer3d_cli(tiny_repo, "evaluate-folder", str(split_folder), *args, "--models", "cnn", "--out", str(out))
        assert result.returncode == 0, result.stderr[-2000:]
        runs[split], printed[split] = json.loads(out.read_text()), result.stdout
    assert "scoring its test split, as the evaluate_extra stage does" in printed[None]
    assert (runs[None]["split"], runs["all"]["split"], runs["testing"]["split"]) == ("test", "all", "testing")
    assert runs[None]["used"] == runs["testing"]["used"] == 60 and runs["all"]["used"] == 120
    assert runs[None]["models"]["cnn"]["accuracy"] == runs["all"]["models"]["cnn"]["accuracy"]  # the same faces twice
