"""The pipeline's outputs travel through a real local S3 (moto) like they would through DagsHub's
endpoint, and a real training stage logs to a real MLflow server."""

import json
import os
import subprocess
import uuid

import mlflow
import pytest
import yaml

from fer3d.app.cli import main as fer3d_main
from fer3d.app.remote import check_no_secrets
from fer3d.config import TRAIN
from fer3d.io import load_npz
from tests.conftest import SMALL_PIPELINE, epochs_everywhere, project_copy, ran_stages, requires_data, run_dvc

pytestmark = [requires_data, pytest.mark.slow]
BUCKET = "fer3d-pipeline"
# made at run time (moto accepts any keys): a literal would be found in this very file's copy
KEY_ID, SECRET = f"FER3D{uuid.uuid4().hex[:12].upper()}", uuid.uuid4().hex


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def pushed(moto_server, tmp_path_factory):
    """A small pipeline run, committed and pushed to s3://fer3d-pipeline/dvc on the moto server."""
    import boto3

    os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    repo = project_copy(tmp_path_factory.mktemp("origin"), {**SMALL_PIPELINE, **epochs_everywhere(1)})
    run_dvc(repo, "repro")
    cwd = os.getcwd()
    os.chdir(repo)
    try:
        assert (
            fer3d_main(
                [
                    "remote",
                    "s3",
                    "--url",
                    f"s3://{BUCKET}/dvc",
                    "--endpoint",
                    moto_server,
                    "--access-key-id",
                    KEY_ID,
                    "--secret-access-key",
                    SECRET,
                    "--default",
                ]
            )
            == 0
        )
    finally:
        os.chdir(cwd)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "pipeline outputs")
    push = run_dvc(repo, "push")
    return repo, push.stdout


def test_push_sends_every_stage_output(pushed, moto_server):
    import boto3

    repo, _ = pushed
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    cached_outs = [
        o for s in lock["stages"].values() for o in s.get("outs", []) if not o["path"].startswith("metrics/")
    ]
    paths = {o["path"] for o in cached_outs}
    assert {
        "data/fer2013.npz",
        "data/landmarks.npz",
        "data/voxels.npz",
        "data/mesh_features.npz",
        "models/cnn.pt",
        "models/mesh_gnn.pt",
    } <= paths
    keys = {
        o["Key"]
        for o in boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1").list_objects_v2(
            Bucket=BUCKET, Prefix="dvc/files/md5/", MaxKeys=1000
        )["Contents"]
    }
    for out in cached_outs:
        md5 = out["md5"].removesuffix(".dir")
        assert any(k.endswith(f"{md5[:2]}/{md5[2:]}") or k.endswith(f"{md5[:2]}/{md5[2:]}.dir") for k in keys), out[
            "path"
        ]
    assert check_no_secrets(repo, secrets=[KEY_ID, SECRET]) == []
    assert (
        SECRET in (repo / ".dvc" / "config.local").read_text() and SECRET not in (repo / ".dvc" / "config").read_text()
    )


def test_fresh_clone_pulls_and_is_up_to_date(pushed, tmp_path):
    repo, _ = pushed
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    assert not (clone / "models" / "cnn.pt").exists()
    # the clone has the remote (from the committed .dvc/config) but no credentials: they come from env
    run_dvc(clone, "pull")
    assert (clone / "models" / "cnn.pt").read_bytes() == (repo / "models" / "cnn.pt").read_bytes()
    assert "up to date" in run_dvc(clone, "status").stdout
    assert ran_stages(run_dvc(clone, "repro").stdout) == set()


def test_damaged_remote_object_is_detected_not_used(pushed, tmp_path, moto_server):
    import boto3

    repo, _ = pushed
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    md5 = next(
        o["md5"] for o in lock["stages"]["train_3d@landmark_mlp"]["outs"] if o["path"] == "models/landmark_mlp.pt"
    )
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    key = f"dvc/files/md5/{md5[:2]}/{md5[2:]}"
    original = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=original[:-100] + b"\0" * 100)
    try:
        clone = tmp_path / "clone"
        git(tmp_path, "clone", "-q", str(repo), str(clone))
        pulled = run_dvc(clone, "pull", check=False)
        assert pulled.returncode != 0
        assert "models/landmark_mlp.pt" in pulled.stderr
        assert not (clone / "models" / "landmark_mlp.pt").exists()
        assert (clone / "models" / "cnn.pt").exists()  # the undamaged outputs still arrive
    finally:
        s3.put_object(Bucket=BUCKET, Key=key, Body=original)


def test_training_stage_logs_to_a_real_mlflow_server(pushed, mlflow_server):
    repo, _ = pushed
    env = {"FER3D_TRACKING": "on", "MLFLOW_TRACKING_URI": mlflow_server}
    run_dvc(repo, "repro", "-f", "-s", "train_3d@landmark_mlp", env=env)
    client = mlflow.tracking.MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("fer3d")
    run = client.search_runs([experiment.experiment_id], filter_string="tags.mlflow.runName = 'landmark_mlp'")[0]
    assert run.data.params["lr"] == str(yaml.safe_load((repo / "params.yaml").read_text())["lr"])
    assert run.data.params["epochs"] == "1" and run.data.params["name"] == "landmark_mlp"
    # what it learned from, so that a smoke run and a full run differ in MLflow too
    fer = load_npz(repo / "data" / "fer2013.npz")
    assert 0 < int(run.data.params["data.train_rows"]) <= int((fer["split"] == TRAIN).sum())  # those with a mesh
    assert run.data.params["data.labels"] == "fer2013" and len(run.data.params["fingerprint"]) == 32
    assert run.data.metrics["resumed_from_epoch"] == 0
    history = client.get_metric_history(run.info.run_id, "val_acc")
    assert [m.step for m in history] == [1]
    summary = json.loads((repo / "metrics" / "train" / "landmark_mlp.json").read_text())
    assert summary["tracking"] == "ok"
    assert abs(run.data.metrics["best_val_acc"] - summary["val_acc"]) < 1e-4
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "landmark_mlp.pt" in artifacts


def test_evaluate_logs_every_score_and_adds_test_scores_to_the_training_run(pushed, mlflow_server):
    """The evaluate run holds every model's and fusion's scores, and the newest landmark_mlp training
    run that wrote models/landmark_mlp.pt (bit for bit the same on every retrain) gets its test scores."""
    repo, _ = pushed
    env = {"FER3D_TRACKING": "on", "MLFLOW_TRACKING_URI": mlflow_server}
    run_dvc(repo, "repro", "-f", "-s", "train_3d@landmark_mlp", env=env)
    result = run_dvc(repo, "repro", "-f", "-s", "evaluate", "evaluate_shifts", env=env)
    for stage in ("evaluate", "evaluate_shifts"):
        assert (
            f"{stage}: MLflow run" in result.stdout and "added to the training runs of 1 of 8 models" in result.stdout
        )
    client = mlflow.tracking.MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("fer3d").experiment_id
    [evaluate] = client.search_runs([experiment], filter_string="tags.mlflow.runName = 'evaluate'")
    summary = json.loads((repo / "metrics" / "summary.json").read_text())
    for name, accuracy in summary["test_acc"].items():
        assert evaluate.data.metrics[f"{name}/test_acc"] == pytest.approx(accuracy)
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    md5 = next(o["md5"] for o in lock["stages"]["train_3d@landmark_mlp"]["outs"] if o["path"].endswith(".pt"))
    assert evaluate.data.params["models.landmark_mlp.md5"] == md5
    assert evaluate.data.params["fusions.fusion.models"] == ",".join(summary["fusions"]["fusion"]["models"])
    trained, *older = client.search_runs(
        [experiment], filter_string=f"tags.`fer3d.model_md5` = '{md5}'", order_by=["attributes.start_time DESC"]
    )
    assert all("test_acc" not in run.data.metrics for run in older)
    assert trained.info.run_name == "landmark_mlp" and trained.info.status == "FINISHED"
    scores = json.loads((repo / "metrics" / "eval" / "landmark_mlp.json").read_text())
    assert trained.data.metrics["test_acc"] == pytest.approx(scores["scores"]["test"]["accuracy"])
    assert trained.data.metrics["test_macro_f1"] == pytest.approx(scores["scores"]["test"]["macro_f1"])
    assert [m.step for m in client.get_metric_history(trained.info.run_id, "val_acc")] == [1]  # the curve alone
    assert {a.path for a in client.list_artifacts(evaluate.info.run_id)} >= {"summary.json", "comparison.md"}
    shifted = json.loads((repo / "metrics" / "shifts.json").read_text())["models"]
    assert trained.data.metrics["test_shifted_acc"] == pytest.approx(shifted["landmark_mlp"]["test"]["shifted"])
    assert trained.data.metrics["test_acc/blur:1"] == pytest.approx(shifted["landmark_mlp"]["test"]["blur:1"])
    [by_shift] = client.search_runs([experiment], filter_string="tags.mlflow.runName = 'evaluate_shifts'")
    assert by_shift.data.metrics["fusion/test_shifted_acc"] == pytest.approx(shifted["fusion"]["test"]["shifted"])


def test_training_survives_a_dead_tracking_server(pushed):
    repo, _ = pushed
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    result = run_dvc(
        repo, "repro", "-f", "-s", "train_3d@landmark_mlp", env={"FER3D_TRACKING": "on", "MLFLOW_TRACKING_URI": dead}
    )
    assert "tracking: MLflow at" in result.stderr + result.stdout
    summary = json.loads((repo / "metrics" / "train" / "landmark_mlp.json").read_text())
    assert summary["tracking"] == "failed"
    assert (repo / "models" / "landmark_mlp.pt").exists()
