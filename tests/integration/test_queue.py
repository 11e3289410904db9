"""The DVC experiment queue: `dvc exp run --queue` runs each experiment in a temporary copy under
.dvc/tmp/exps/, where `../shared/data` and a local MLflow store would point into the copy. Paths
outside the repository resolve from the workspace, so two queued experiments run side by side
(`dvc queue start -j 2`), score FER+, and leave their MLflow runs in the workspace's store."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time

import pytest

from tests.conftest import SHARED_DATA, SMALL_PIPELINE, project_copy, requires_data, run_dvc

pytestmark = [requires_data, pytest.mark.slow]


def test_two_queued_experiments_run_in_parallel_with_fer_plus_and_mlflow(tmp_path):
    # the project's default `../shared/data`, relative: it must resolve from the workspace
    (tmp_path / "shared").symlink_to(SHARED_DATA.parent, target_is_directory=True)
    repo = project_copy(tmp_path / "project", {**SMALL_PIPELINE, "epochs": 1, "data.shared_dir": "../shared/data"})
    env = {"FER3D_TRACKING": "on", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    # The data stages first, committed, as the README advises: two queued experiments that both
    # have to run the same stage can race in DVC's run-cache (seen: "unable to remove
    # data/mesh_topology.npz without a confirmation"); the trainings are what runs side by side.
    run_dvc(repo, "repro", "download", "landmarks", "meshes", "voxelize", "shift_landmarks", env=env)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, capture_output=True)
    subprocess.run(["git", "commit", "-qm", "data stages"], cwd=repo, check=True, capture_output=True)
    run_dvc(repo, "exp", "run", "--queue", "--name", "lr-a", "-S", "lr=0.001", env=env)
    run_dvc(repo, "exp", "run", "--queue", "--name", "lr-b", "-S", "lr=0.003", env=env)
    run_dvc(repo, "queue", "start", "-j", "2", env=env)
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        status = run_dvc(repo, "queue", "status", env=env).stdout
        if "Running" not in status and "Queued" not in status:
            break
        time.sleep(10)
    assert status.count("Success") == 2, status + run_dvc(repo, "queue", "logs", "lr-a", check=False).stdout[-3000:]
    shown = json.loads(run_dvc(repo, "exp", "show", "--json", env=env).stdout)
    experiments = {e["name"]: e for row in shown for exp in (row.get("experiments") or []) for e in exp.get("revs", [])}
    # Both ran (`Success` above), but DVC 3.67.1 can keep only one of two experiments that finish
    # within a second (README, "The queue"; seen once here); the MLflow count below still needs both.
    kept = sorted({"lr-a", "lr-b"} & set(experiments))
    assert kept, list(experiments)
    for name in kept:
        metrics = experiments[name]["data"]["metrics"]["metrics/summary.json"]["data"]
        assert metrics["subset_sizes"]["ferplus"] > 0, f"{name}: FER+ was not scored"
    # every training stage of both experiments logged to the workspace's store, not the copies'
    db = repo / "mlflow.db"
    assert db.exists(), os.listdir(repo)
    with sqlite3.connect(db) as con:
        runs = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        names = {name for (name,) in con.execute("SELECT name FROM runs")}
    assert runs >= 16, runs
    # named with their experiment: the run list tells the two queued experiments apart
    assert {"cnn@lr-a", "cnn@lr-b", "evaluate@lr-a", "evaluate@lr-b"} <= names, sorted(names)
