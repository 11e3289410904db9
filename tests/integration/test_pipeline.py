"""The whole DVC pipeline on a small real subset, in a fresh copy of the project: it runs, a second
`dvc repro` does nothing, a voxelize change re-runs only what depends on voxels, `dvc exp run -S`
and `dvc metrics diff` work, and retraining with the same seed gives the same weights."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from fer3d.device import resolve_precision
from fer3d.params import TRACE_ENV
from tests.conftest import MODEL_NAMES, SMALL_PIPELINE, project_copy, ran_stages, requires_data, run_dvc

pytestmark = [requires_data, pytest.mark.slow]
MODELS = list(MODEL_NAMES)
SMALL = SMALL_PIPELINE
dvc = run_dvc


def lock_md5(repo: Path, stage: str, path: str) -> str:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return next(o["md5"] for o in lock["stages"][stage]["outs"] if o["path"] == path)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    repo = project_copy(tmp_path_factory.mktemp("pipeline"), SMALL)
    first = dvc(repo, "repro", env={TRACE_ENV: str(repo / "params_read.txt")})
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "first repro"], cwd=repo, check=True)
    return repo, first.stdout


def test_repro_runs_every_stage_and_writes_outputs(pipeline):
    repo, output = pipeline
    expected = (
        {"check_params", "download", "landmarks", "meshes", "voxelize", "evaluate", "shift_landmarks"}
        | {"evaluate_shifts", "report"}
        | {f"train_2d@{m}" for m in MODELS[:3]}
        | {f"train_3d@{m}" for m in MODELS[3:]}
    )
    assert ran_stages(output) == expected
    summary = json.loads((repo / "metrics" / "summary.json").read_text())
    fusions = {"fusion", "fusion_2d", "fusion_3d"}
    assert set(summary["test_acc"]) == set(MODELS) | fusions
    assert summary["fusions"]["fusion"]["models"] == list(MODELS)
    assert all(w >= 0 for f in summary["fusions"].values() for w in f["weights"])
    assert all(0 <= a <= 1 for a in summary["test_acc"].values())
    # every model is scored on all PrivateTest rows of the subset
    for m in MODELS:
        scores = json.loads((repo / "metrics" / "eval" / f"{m}.json").read_text())["scores"]
        assert scores["test"]["images"] == summary["subset_sizes"]["test"]
        assert sum(map(sum, scores["test"]["confusion"])) == scores["test"]["images"]
    assert (repo / "metrics" / "comparison.md").read_text().count("\n| ") == len(MODELS) + len(fusions)
    for m in MODELS:
        assert (repo / "models" / f"{m}.pt").exists()
        curve = (repo / "metrics" / "train" / f"{m}_curve.csv").read_text().splitlines()
        assert curve[0].startswith("epoch,") and len(curve) == 1 + SMALL[f"models.{m}.epochs"]
    # the shift suite, PrivateTest only by default (shifts.splits)
    shifted = json.loads((repo / "metrics" / "shifts.json").read_text())
    assert shifted["images"] == {"test": summary["subset_sizes"]["test"]}
    assert set(shifted["models"]) == set(summary["test_acc"])
    assert all(set(r) == {"family", "test"} for r in shifted["models"].values())
    assert "Accuracy under shift (PrivateTest)" in (repo / "reports" / "report.md").read_text()
    landmarks = json.loads((repo / "metrics" / "landmarks.json").read_text())
    assert landmarks["detection_rate"] > 0.9
    # data and models are DVC's, never git's
    tracked = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True).stdout.split()
    assert not [f for f in tracked if f.startswith(("data/", "models/", "reports/")) and not f.endswith(".gitignore")]


def test_second_repro_is_a_no_op(pipeline):
    repo, _ = pipeline
    assert "up to date" in dvc(repo, "status").stdout
    assert ran_stages(dvc(repo, "repro").stdout) == set()


def fer3d_repro(repo: Path, *args: str) -> str:
    """`fer3d repro ARGS` in `repo` (this venv, tracking off); its output, after checking it succeeded."""
    env = {**os.environ, "FER3D_TRACKING": "off", "FER3D_PROGRESS": "0"}
    env.pop("FER3D_ROOT", None)
    result = subprocess.run(
        [sys.executable, "-m", "fer3d", "repro", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:]
    return result.stdout


def model_md5s(lock: dict) -> dict[str, str]:
    return {
        s: o["md5"] for s, e in lock["stages"].items() for o in e.get("outs", []) if o["path"].startswith("models/")
    }


def test_side_by_side_repro_makes_the_same_models(pipeline):
    """`fer3d repro -j 2` trains two models at a time; train.threads fixes each training's thread
    count, so the weights are the bits `dvc repro` made, one stage after another."""
    repo, _ = pipeline
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    models = model_md5s(lock)
    assert len(models) == len(MODELS) + 1  # and evaluate's fusion.json
    for m in MODELS:
        summary = json.loads((repo / "metrics" / "train" / f"{m}.json").read_text())
        assert summary["threads"] == 2
        saved = torch.load(repo / "models" / f"{m}.pt", weights_only=True)["training"]["config"]
        assert "threads" not in saved and saved["seed"] == 42  # the recipe, not the machine's settings
        # what precision: auto meant on this machine (params.yaml keeps mesh_gnn and landmark_mlp fp32)
        wanted = "fp32" if m in ("mesh_gnn", "landmark_mlp") else resolve_precision("auto", torch.device("cpu"))
        assert summary["precision"] == saved["precision"] == wanted
    side_by_side = fer3d_repro(repo, "--jobs", "2", "--force", *{s.split("@")[0] for s in models})
    assert f"{len(models) + 4} stage(s) ran" in side_by_side  # with download, landmarks, meshes, voxelize
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert model_md5s(lock) == models
    # the report reads the rewritten metrics (their timings differ): the rest of the pipeline brings
    # it up to date, and finds everything else so
    rest = fer3d_repro(repo)
    assert "\nreport: ran" in rest and "train_2d@resnet: up to date" in rest
    assert "up to date" in dvc(repo, "status").stdout


def test_voxel_change_reruns_only_what_reads_voxels(pipeline):
    repo, _ = pipeline
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["voxelize"]["grid"] = 16
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        assert ran_stages(dvc(repo, "repro").stdout) == {
            "check_params",  # any params change
            "voxelize",
            "train_3d@voxel_cnn",
            "evaluate",
            "evaluate_shifts",
            "report",
        }
    finally:
        subprocess.run(["git", "reset", "-q", "--hard", "HEAD"], cwd=repo, check=True)
        dvc(repo, "checkout", "-q")
    assert "up to date" in dvc(repo, "status").stdout


def test_same_seed_retrains_bit_identical(pipeline):
    repo, _ = pipeline
    before = lock_md5(repo, "train_2d@cnn", "models/cnn.pt"), lock_md5(repo, "train_3d@mesh_gnn", "models/mesh_gnn.pt")
    dvc(repo, "repro", "-f", "-s", "train_2d@cnn", "train_3d@mesh_gnn")
    after = lock_md5(repo, "train_2d@cnn", "models/cnn.pt"), lock_md5(repo, "train_3d@mesh_gnn", "models/mesh_gnn.pt")
    assert before == after


def test_exp_run_and_metrics_diff(pipeline):
    """`dvc exp run -S lr=...` retrains what reads lr, and `dvc metrics diff` sets the committed
    figures beside the experiment's. Whether a 60-image test set's accuracy moves is chance, so the
    check is that the diff reports both runs' values as the files hold them, not that they differ."""
    repo, _ = pipeline
    before = lock_md5(repo, "train_2d@cnn", "models/cnn.pt")
    committed = json.loads((repo / "metrics" / "summary.json").read_text())["test_acc"]["cnn"]
    dvc(repo, "exp", "run", "-S", "lr=0.0005")
    assert lock_md5(repo, "train_2d@cnn", "models/cnn.pt") != before
    experiment = json.loads((repo / "metrics" / "summary.json").read_text())["test_acc"]["cnn"]
    diff = json.loads(dvc(repo, "metrics", "diff", "--all", "--json").stdout)
    row = diff["metrics/summary.json"]["test_acc.cnn"]
    assert (row["old"], row["new"]) == pytest.approx((committed, experiment))
    assert "test_acc.cnn" in dvc(repo, "metrics", "diff", "--all", "--md").stdout
    params_diff = dvc(repo, "params", "diff").stdout
    assert "0.0005" in params_diff
    html = dvc(repo, "plots", "show", "-o", str(repo / "plots_html"))
    assert (repo / "plots_html" / "index.html").exists(), html.stdout


def test_every_param_a_stage_reads_is_declared_in_dvc_yaml(pipeline):
    """Each stage's params.yaml reads (recorded through fer3d.params while `dvc repro` ran) are keys
    its dvc.yaml entry declares, or lie under one: a new read without a declaration fails here."""
    from dvc.repo import Repo

    repo, _ = pipeline
    reads: dict[str, set[str]] = {}
    for line in (repo / "params_read.txt").read_text().splitlines():
        command, key = line.split("\t")
        reads.setdefault(command, set()).add(key)
    with Repo(str(repo)) as r:
        declared = {
            " ".join(s.cmd.split()[2:]): {k for d in s.deps if hasattr(d, "params") for k in (d.params or ["*"])}
            for s in r.index.stages
        }
    assert set(reads) == set(declared), "every stage reads params.yaml"
    for command, keys in reads.items():
        if "*" in declared[command]:  # tracks the whole file (check_params)
            continue
        undeclared = {k for k in keys if not any(k == d or k.startswith(d + ".") for d in declared[command])}
        assert not undeclared, f"`python -m {command}` reads {sorted(undeclared)}, which dvc.yaml does not declare"
