"""Trained models for tests of what uses them (predict, Grad-CAM, viewer, report): the whole DVC
pipeline on a small real subset (~60 rows per split, 1 epoch per model, ~2 min here), once per test
session (every module that uses the models shares it). It is read-only for tests: write outputs under
tmp_path, and copy what a test must change. The fixture reaches every integration module through
tests/integration/conftest.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import epochs_everywhere, project_copy, run_dvc

TINY_PIPELINE = {
    "data.limit": 60,
    **epochs_everywhere(1),
    "batch_size": 16,
    "device": "cpu",
    "landmarks.workers": 1,
    "meshes.samples": 2,
    "report.gradcam_samples": 4,
    "shifts.splits": ["val", "test"],  # both, as when choosing a recipe (the default is PrivateTest only)
}
QUIET = {"OMP_NUM_THREADS": "1", "FER3D_TRACKING": "off", "FER3D_PROGRESS": "0", "GLOG_minloglevel": "2"}


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory) -> Path:
    """A project copy after `dvc repro`: models/, metrics/, reports/ all written."""
    repo = project_copy(tmp_path_factory.mktemp("tiny_repo"), TINY_PIPELINE)
    run_dvc(repo, "repro", env=QUIET)
    return repo


def fer3d_cli(repo: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """`python -m fer3d.app.cli ARGS` in the project copy (its own code, params and models)."""
    env = {**os.environ, **QUIET}
    env.pop("FER3D_ROOT", None)
    return subprocess.run(
        [sys.executable, "-m", "fer3d.app.cli", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
