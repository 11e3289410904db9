"""bench/fusion_members.py on the tiny pipeline's finished run: re-fitting the run's own fusion rows
from the stored probabilities gives the evaluate stage's weights and accuracies, a model file scored
anew in place of the same file changes nothing, other member sets are fitted and scored, and a
member that is nowhere is named; 3D files can be scored on another landmarks file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fer3d.config import TEST, VAL
from fer3d.inference.fusion import load_fusions
from tests.conftest import requires_data
from tests.integration.models_fixture import QUIET

pytestmark = [requires_data, pytest.mark.slow]


def fusion_members(repo, tmp_path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "rows.json"
    result = subprocess.run(
        [sys.executable, "bench/fusion_members.py", "--run", ".", "--json", str(out), *args],
        cwd=repo,
        env={**os.environ, **QUIET},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result, (json.loads(out.read_text()) if out.exists() else {})


def test_refitted_rows_are_the_evaluate_stage_rows(tiny_repo, tmp_path):
    result, rows = fusion_members(tiny_repo, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    fusions = load_fusions(tiny_repo / "models" / "fusion.json")
    assert set(rows) == set(fusions) == {"fusion", "fusion_2d", "fusion_3d"}
    for name, fusion in fusions.items():
        evaluated = json.loads((tiny_repo / "metrics" / "eval" / f"{name}.json").read_text())
        assert rows[name]["members"] == fusion.members
        assert rows[name]["weights"] == pytest.approx(fusion.weights, abs=1e-4), name
        assert rows[name]["val"] == pytest.approx(evaluated["val_acc"], abs=1e-5), name
        assert rows[name]["test"] == pytest.approx(evaluated["scores"]["test"]["accuracy"], abs=1e-5), name
        assert f"| {name} | {100 * rows[name]['val']:.2f}% | {100 * rows[name]['test']:.2f}% |" in result.stdout


def test_a_model_file_swapped_in_and_a_chosen_member_set(tiny_repo, tmp_path):
    result, rows = fusion_members(
        tiny_repo,
        tmp_path,
        "--model",
        "cnn_again=models/cnn.pt",
        "--model",
        "mlp_again=models/landmark_mlp.pt",
        "--row",
        "two=resnet,landmark_mlp",
        "--row",
        "swapped=cnn_again,resnet,mlp_again",
        "--row",
        "stored=cnn,resnet,landmark_mlp",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(rows) == ["two", "swapped", "stored"]
    assert rows["two"]["members"] == ["resnet", "landmark_mlp"] and len(rows["two"]["weights"]) == 2
    assert all(w >= 0 for w in rows["two"]["weights"])
    # the same files, scored again (onnxruntime, within 1e-4 of the stored torch probabilities)
    assert rows["swapped"]["weights"] == pytest.approx(rows["stored"]["weights"], abs=1e-3)
    assert rows["swapped"]["val"] == pytest.approx(rows["stored"]["val"], abs=0.02)
    assert rows["swapped"]["test"] == pytest.approx(rows["stored"]["test"], abs=0.02)


def test_default_rows_add_the_fusion_with_each_model_in_place(tiny_repo, tmp_path):
    result, rows = fusion_members(tiny_repo, tmp_path, "--model", "vgg_again=models/vgg.pt")
    assert result.returncode == 0, result.stderr[-3000:]
    fusion = load_fusions(tiny_repo / "models" / "fusion.json")["fusion"]
    swapped = rows["fusion, vgg_again for vgg"]
    assert swapped["members"] == ["vgg_again" if m == "vgg" else m for m in fusion.members]
    assert swapped["weights"] == pytest.approx(rows["fusion"]["weights"], abs=1e-3)
    # compared with the row it replaces on the same images: the same file scored again agrees with
    # the stored one on (nearly) every face, so the paired difference and its interval sit at zero
    against = swapped["against"]
    assert against["row"] == "fusion" and "against" not in rows["fusion"]
    for key in ("val", "test"):
        d = against[key]
        assert d["difference"] == pytest.approx(swapped[key] - rows["fusion"][key], abs=1e-5)
        assert d["only_a_right"] + d["only_b_right"] <= 2 and d["interval_95"][0] <= 0 <= d["interval_95"][1]
    assert "| fusion, vgg_again for vgg | fusion | " in result.stdout


def test_rows_compared_with_a_chosen_row(tiny_repo, tmp_path):
    result, rows = fusion_members(
        tiny_repo, tmp_path, "--row", "two=resnet,landmark_mlp", "--row", "alone=resnet", "--against", "fusion"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(rows) == ["two", "alone", "fusion"] and "against" not in rows["fusion"]
    for name in ("two", "alone"):
        d = rows[name]["against"]["val"]
        assert d["difference"] == pytest.approx(rows[name]["val"] - rows["fusion"]["val"], abs=1e-5)
        assert d["interval_95"][0] <= d["difference"] <= d["interval_95"][1]
        assert d["images"] == int((np.load(tiny_repo / "data" / "fer2013.npz")["split"] == VAL).sum())
    bad, _ = fusion_members(tiny_repo, tmp_path, "--row", "alone=resnet", "--against", "nope")
    assert bad.returncode != 0 and "--against nope: not a --row nor one of the run's rows" in bad.stderr


def test_an_unknown_member_is_named(tiny_repo, tmp_path):
    result, rows = fusion_members(tiny_repo, tmp_path, "--row", "bad=resnet,cnn28")
    assert result.returncode != 0 and not rows
    assert "cnn28" in result.stderr and "--model" in result.stderr


def test_a_model_file_named_like_a_run_member_is_refused(tiny_repo, tmp_path):
    # under the member's own name the trial would replace it in the baseline rows too: every
    # swapped row would be compared with itself (+0.00) and the run's rows would not be the run's
    result, rows = fusion_members(tiny_repo, tmp_path, "--model", "resnet=models/resnet.pt")
    assert result.returncode != 0 and not rows
    assert "--model resnet=models/resnet.pt" in result.stderr and "another name" in result.stderr


def test_an_equal_weight_mean_is_a_member_and_a_row(tiny_repo, tmp_path):
    result, rows = fusion_members(
        tiny_repo,
        tmp_path,
        "--model",
        "mlp_again=models/landmark_mlp.pt",
        "--mean",
        "twice=landmark_mlp,mlp_again",
        "--mean",
        "three_d=landmark_mlp,mesh_gnn",
        "--row",
        "alone=landmark_mlp",
        "--row",
        "with_mean=resnet,three_d",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(rows) == ["twice", "three_d", "alone", "with_mean"]
    # a file averaged with itself (scored twice: torch and onnxruntime agree to 1e-4) is that file
    assert rows["twice"]["val"] == pytest.approx(rows["alone"]["val"], abs=0.02)
    assert rows["twice"]["test"] == pytest.approx(rows["alone"]["test"], abs=0.02)
    assert rows["with_mean"]["members"] == ["resnet", "three_d"] and len(rows["with_mean"]["weights"]) == 2
    mixed, _ = fusion_members(tiny_repo, tmp_path, "--mean", "bad=resnet,landmark_mlp")
    assert mixed.returncode != 0 and "--mean bad mixes families ['2d', '3d']" in mixed.stderr


def test_3d_files_scored_on_another_landmarks_file(tiny_repo, tmp_path):
    """--landmarks: a 3D file reads its points (and which faces have them) from that file; with no
    face found anywhere it answers the training prior for every row, so its row's accuracy is the
    prior's class share; the run's own landmarks file changes nothing."""
    stored = np.load(tiny_repo / "data" / "landmarks.npz")
    no_faces = tmp_path / "no_faces.npz"
    np.savez(no_faces, landmarks=stored["landmarks"], found=np.zeros_like(stored["found"]))
    args = ("--model", "mlp_again=models/landmark_mlp.pt", "--row", "again=mlp_again", "--row", "stored=landmark_mlp")
    blind, blind_rows = fusion_members(tiny_repo, tmp_path, *args, "--landmarks", str(no_faces))
    same, same_rows = fusion_members(tiny_repo, tmp_path, *args, "--landmarks", "data/landmarks.npz")
    assert blind.returncode == 0 and same.returncode == 0, blind.stderr[-3000:] + same.stderr[-3000:]
    assert same_rows["again"]["val"] == pytest.approx(same_rows["stored"]["val"], abs=0.02)
    fer = np.load(tiny_repo / "data" / "fer2013.npz")
    prior_class = int(np.argmax(load_fusions(tiny_repo / "models" / "fusion.json")["fusion"].prior))
    for key, split in (("val", VAL), ("test", TEST)):
        share = float((fer["label"][fer["split"] == split] == prior_class).mean())
        assert blind_rows["again"][key] == pytest.approx(share, abs=1e-6), key
    assert blind_rows["stored"] == same_rows["stored"]  # the run's stored probabilities are untouched
