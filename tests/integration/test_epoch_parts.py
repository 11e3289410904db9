"""bench/epoch_parts.py on the tiny pipeline's project: one row per named model, with the epoch's
real batch count and precision, positive seconds for each part and the schedule they add up to; a
bad --steps or an unknown model is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fer3d.config import TRAIN
from fer3d.device import resolve_precision
from tests.conftest import requires_data
from tests.integration.models_fixture import QUIET, TINY_PIPELINE

PROJECT = Path(__file__).resolve().parents[2]


def epoch_parts(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "bench/epoch_parts.py", *args],
        cwd=repo,
        env={**os.environ, **QUIET},
        capture_output=True,
        text=True,
        timeout=600,
    )


@requires_data
@pytest.mark.slow
def test_rows_have_the_epochs_batches_precision_and_seconds(tiny_repo, tmp_path):
    out = tmp_path / "parts.json"
    args = ["--models", "cnn,landmark_mlp", "--steps", "1", "--threads", "1", "--json", str(out)]
    result = epoch_parts(tiny_repo, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {r["model"]: r for r in json.loads(out.read_text())}
    assert list(rows) == ["cnn", "landmark_mlp"]
    printed = [line.split("|")[1].strip() for line in result.stdout.splitlines() if line.startswith("| ")]
    assert printed == ["model", "cnn", "landmark_mlp", "all 2"]

    split = np.load(tiny_repo / "data" / "fer2013.npz")["split"]
    cnn, mlp = rows["cnn"], rows["landmark_mlp"]
    assert cnn["precision"] == resolve_precision("auto", torch.device("cpu"))  # params: train.precision auto
    assert mlp["precision"] == "fp32"  # its own section says fp32
    assert cnn["batches"] == int((split == TRAIN).sum()) // TINY_PIPELINE["batch_size"]
    assert 0 < mlp["batches"] <= cnn["batches"]  # only the training faces FaceMesh found
    for r in rows.values():
        assert r["augment_s"] > 0 and r["steps_s"] > 0 and r["validate_s"] > 0, r
        assert r["timed_steps"] == r["batches"], r  # --seconds (20) outlasts the tiny epoch: all of it timed
        # the tiny pipeline's schedule: 1 epoch, validated (the last epoch always is)
        assert (r["epochs"], r["validated_epochs"]) == (1, 1), r
        parts = r["augment_s"] + r["steps_s"] + r["validate_s"]
        assert r["schedule_minutes"] == pytest.approx(parts / 60), r
    total = [line for line in result.stdout.splitlines() if line.startswith("| all 2 ")]
    assert len(total) == 1 and float(total[0].split("|")[-2]) == pytest.approx(
        sum(r["schedule_minutes"] for r in rows.values()), abs=0.051
    )


def test_bad_steps_are_refused():
    result = epoch_parts(PROJECT, "--steps", "0")
    assert result.returncode != 0
    assert "--steps must be >= 1, got 0" in result.stderr
    result = epoch_parts(PROJECT, "--seconds", "-1")
    assert result.returncode != 0
    assert "--seconds must be >= 0, got -1.0" in result.stderr


def test_unknown_models_are_refused_naming_the_known_ones():
    result = epoch_parts(PROJECT, "--models", "resnet,resnet50")
    assert result.returncode != 0
    assert "--models: expected 'all' or names from params.yaml's models" in result.stderr
    assert "landmark_mlp" in result.stderr and "'resnet,resnet50'" in result.stderr
