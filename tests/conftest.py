"""Shared fixtures. Real-data tests read FER2013 from ../shared/data (or FER3D_SHARED_DATA) and
are skipped, saying why, where it is absent."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("FER3D_SHARED_DATA", ROOT.parent / "shared" / "data"))
FER_CSV = SHARED_DATA / "fer2013.csv.gz"
NO_DATA_REASON = (
    f"FER2013 not found at {FER_CSV} (set FER3D_SHARED_DATA to the folder holding "
    "fer2013.csv.gz to run the real-data tests)"
)

requires_data = pytest.mark.skipif(not FER_CSV.exists(), reason=NO_DATA_REASON)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """DVC's CLI (`dvc.cli.main`, as some tests call it) points its log handlers at the sys.stdout and
    sys.stderr of that moment, pytest's capture, which is closed after the test; a later Repo.init in a
    fixture then fails on "I/O operation on closed file" (seen in `-m "not slow"`'s order). Drop them."""
    import logging

    for name in ("dvc", "dvc_objects", "dvc_data"):  # the loggers dvc.logger.setup() adds handlers to
        log = logging.getLogger(name)
        for handler in list(log.handlers):
            if getattr(getattr(handler, "stream", None), "closed", False):
                log.removeHandler(handler)


@pytest.fixture(scope="session")
def fer_full():
    """The whole verified FER2013 (read once per test session, ~5 s)."""
    if not FER_CSV.exists():
        pytest.skip(NO_DATA_REASON)
    from fer3d.data import fer2013 as data

    return data.read_source(FER_CSV)


@pytest.fixture(scope="session")
def fer_small(fer_full):
    """A stratified real subset: about 40 rows of each split, every class present."""
    from fer3d.data import fer2013 as data

    return data.stratified_subset(fer_full, 40, seed=0)


@pytest.fixture(scope="session")
def fer_csv_lines():
    """Header + data lines of the real csv (bytes), to build good and broken files from."""
    if not FER_CSV.exists():
        pytest.skip(NO_DATA_REASON)
    import gzip

    return gzip.open(FER_CSV, "rb").read().split(b"\n")[:-1]


def project_copy(dest: Path, overrides: dict | None = None) -> Path:
    """Copy the project's own files (tracked and untracked-not-ignored: no data, no venv) to `dest`,
    make it a fresh git + DVC repo, apply params overrides ({"data.limit": 60, ...}), commit."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file() and not rel.startswith(("metrics/", "dvc.lock")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["data"]["shared_dir"] = str(SHARED_DATA)
    for dotted, value in (overrides or {}).items():
        node = params
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run = lambda *cmd: subprocess.run(cmd, cwd=dest, check=True, capture_output=True, text=True)
    run("git", "init", "-q")
    run("git", "config", "user.email", "test@fer3d.local")
    run("git", "config", "user.name", "fer3d test")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "project copy")
    return dest


# A pipeline small enough for CI: ~60 rows per split, 2 epochs per model (~40 s for all stages).
MODEL_NAMES = ("cnn", "resnet", "vgg", "landmark_mlp", "landmark_cnn", "distance_cnn", "voxel_cnn", "mesh_gnn")


def epochs_everywhere(n: int) -> dict:
    """Overrides that make every model train `n` epochs: each model's own count, and the top-level one,
    which caps them all (a test raising one model's count raises the top-level one too)."""
    return {"epochs": n, **{f"models.{m}.epochs": n for m in MODEL_NAMES}}


SMALL_PIPELINE = {
    "data.limit": 60,
    **epochs_everywhere(2),
    "batch_size": 16,
    "device": "cpu",
    "landmarks.workers": 2,
    "meshes.samples": 2,
    "report.gradcam_samples": 2,
}


def run_dvc(repo: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """`dvc ARGS` in `repo` with this venv's tools first on PATH; tracking off unless env says."""
    full_env = {
        **os.environ,
        "FER3D_TRACKING": "off",
        "FER3D_PROGRESS": "0",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        **(env or {}),
    }
    full_env.pop("FER3D_ROOT", None)
    result = subprocess.run(["dvc", *args], cwd=repo, env=full_env, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def ran_stages(output: str) -> set[str]:
    """Names of the stages a `dvc repro` output says it ran."""
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}
