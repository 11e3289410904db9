"""bench/tta_views.py: its views are the shifts and zooms it names, and on the tiny pipeline's finished
run its "filed" set (each file's own views: resnet's 10, the others' flip) gives back the evaluate
stage's accuracies and fusion rows, while the other sets score every 2D model and re-fit every fusion row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import requires_data
from tests.integration.models_fixture import QUIET

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))  # a bench script, not a package module
import tta_views


def test_views_are_the_named_shifts_and_zooms():
    x = torch.arange(2 * 48 * 48, dtype=torch.float32).reshape(2, 1, 48, 48)
    views = dict(tta_views.views(x))
    assert list(views) == ["id", "shift-2,0", "shift2,0", "shift0,-2", "shift0,2", "zoom0.93", "zoom1.07"]
    assert torch.equal(views["id"], x)
    # a shift by +2 rows shows the face 2 px further down: row r of the view is row r+2 of the face
    assert torch.equal(views["shift2,0"][:, :, :46], x[:, :, 2:])
    assert torch.equal(views["shift0,-2"][:, :, :, 2:], x[:, :, :, :46])
    for name, v in views.items():
        assert v.shape == x.shape, name
    # zooming about the centre keeps the centre and moves the border
    assert not torch.allclose(views["zoom1.07"], x) and not torch.allclose(views["zoom0.93"], x)
    centre = (slice(None), slice(None), slice(22, 26), slice(22, 26))
    assert torch.allclose(views["zoom1.07"][centre], x[centre], atol=48 * 0.1 * 4)


def test_view_sets_pick_their_views():
    names = ["id", "shift-2,0", "shift2,0", "shift0,-2", "shift0,2", "zoom0.93", "zoom1.07"]
    counts = {s: sum(keep(n) for n in names) for s, keep in tta_views.VIEW_SETS.items()}
    assert counts == {"flip": 1, "shift2": 5, "zoom": 3, "all": 7}  # each doubled by its mirror


@requires_data
@pytest.mark.slow
def test_filed_set_is_the_evaluate_stage_and_larger_sets_score_every_row(tiny_repo, tmp_path):
    out = tmp_path / "tta.json"
    result = subprocess.run(
        [sys.executable, "bench/tta_views.py", "--run", ".", "--threads", "1", "--json", str(out)],
        cwd=tiny_repo,
        env={**os.environ, **QUIET},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    numbers = json.loads(out.read_text())
    evaluated = {p.stem: json.loads(p.read_text()) for p in (tiny_repo / "metrics" / "eval").glob("*.json")}
    image_models = sorted(m for m, e in evaluated.items() if e.get("family") == "2d")
    assert sorted(numbers["models"]) == image_models == ["cnn", "resnet", "vgg"]
    for m in image_models:
        assert set(numbers["models"][m]) == {*tta_views.VIEW_SETS, "filed"}
        # the bench sums the views in another order than the Classifier: a near-tie may flip one face
        assert numbers["models"][m]["filed"]["val"] == pytest.approx(evaluated[m]["val_acc"], abs=0.02), m
        assert f"{m}: 14 views of" in result.stdout
    for row in ("fusion", "fusion_2d", "fusion_3d"):
        for view_set, r in numbers["fusion"][row].items():
            assert 0 <= r["val"] <= 1 and 0 <= r["test"] <= 1 and all(w >= 0 for w in r["weights"]), (row, view_set)
        assert numbers["fusion"][row]["filed"]["val"] == pytest.approx(evaluated[row]["val_acc"], abs=0.02), row
    # the default resnet asks for the shifted views (models.resnet.tta_shift: 2), the cnn and vgg for the flip
    assert numbers["models"]["resnet"]["filed"] == numbers["models"]["resnet"]["shift2"]
    assert numbers["models"]["cnn"]["filed"] == numbers["models"]["cnn"]["flip"]
    # the 3D-only row takes no 2D model, so more 2D views cannot move it
    assert len({json.dumps(r, sort_keys=True) for r in numbers["fusion"]["fusion_3d"].values()}) == 1


@requires_data
@pytest.mark.slow
def test_shifts_score_every_view_set_on_the_suite_as_evaluate_shifts_does(tiny_repo, tmp_path):
    out = tmp_path / "tta.json"
    run = lambda *args: subprocess.run(
        [sys.executable, "bench/tta_views.py", "--run", ".", "--threads", "1", *args],
        cwd=tiny_repo,
        env={**os.environ, **QUIET},
        capture_output=True,
        text=True,
        timeout=600,
    )
    result = run("--models", "resnet", "--shifts", "--json", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    numbers = json.loads(out.read_text())
    assert list(numbers["models"]) == ["resnet"]  # --models: the cnn and vgg are not scored
    stored = json.loads((tiny_repo / "metrics" / "shifts.json").read_text())
    suite = stored["suite"]
    sets = numbers["shifts"]["resnet"]
    assert set(sets) == {*tta_views.VIEW_SETS, "filed"}
    for view_set, splits in sets.items():
        for split, acc in splits.items():
            assert set(acc) == {"plain", "shifted", *suite}, (view_set, split)
            assert acc["shifted"] == pytest.approx(sum(acc[s] for s in suite) / len(suite)), (view_set, split)
            assert acc["plain"] == numbers["models"]["resnet"][view_set][split]
    # the model file's own views on each shifted split: evaluate_shifts' numbers, a near-tie apart
    for split in ("val", "test"):
        for name in (*suite, "plain"):
            assert sets["filed"][split][name] == pytest.approx(stored["models"]["resnet"][split][name], abs=0.02)
    assert "| resnet | all |" in result.stdout
    refused = run("--models", "resnet,landmark_mlp")
    assert refused.returncode != 0 and "['landmark_mlp'] are not 2D models" in refused.stderr
