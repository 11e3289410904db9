"""What survives an interrupt: Ctrl-C in training keeps the last epoch's checkpoint and says so;
a checkpoint is never resumed after the data changed; Ctrl-C in the landmarks stage stops every
worker within seconds and writes nothing. Real stages on a small real subset."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import project_copy, requires_data, run_dvc

pytestmark = [requires_data, pytest.mark.slow]
QUIET = {"FER3D_TRACKING": "off", "FER3D_PROGRESS": "0", "GLOG_minloglevel": "2", "OMP_NUM_THREADS": "1"}
EPOCHS = 40


def stage(repo: Path, *args: str, tracking: bool = False) -> subprocess.Popen:
    env = {**os.environ, **QUIET, **({"FER3D_TRACKING": "on"} if tracking else {})}
    for name in ("FER3D_ROOT", "MLFLOW_TRACKING_URI", "DAGSHUB_REPO"):  # tracked: the repo's own mlflow.db
        env.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as a stage started from a terminal: a runner that starts the tests in the background
        # (CI, `nohup … &`) passes SIGINT down ignored, and Python then never raises KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def interrupt_after(proc: subprocess.Popen, marker: str, timeout: float = 300) -> tuple[str, str, float]:
    """Send SIGINT once `marker` appears on stdout; (stdout, stderr, seconds from SIGINT to exit)."""
    lines, deadline = [], time.monotonic() + timeout
    for line in proc.stdout:
        lines.append(line)
        if marker in line or time.monotonic() > deadline:
            break
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return "".join(lines) + out, err, time.monotonic() - sent


def set_params(repo: Path, **changes) -> None:
    p = yaml.safe_load((repo / "params.yaml").read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = p
        for key in parents:
            node = node[key]
        node[last] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    overrides = {"data.limit": 60, "models.landmark_mlp.epochs": EPOCHS, "batch_size": 16, "device": "cpu"}
    repo = project_copy(tmp_path_factory.mktemp("interrupts"), {**overrides, "landmarks.workers": 1})
    run_dvc(repo, "repro", "meshes", env=QUIET)
    return repo


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


def assert_resumed_equals_fresh(repo: Path, model: str) -> None:
    """Finish the interrupted training from its checkpoint, then train again from scratch: the
    two model files must hold the same weights."""
    again = stage(repo, "stages.train", model)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0 and "train: resuming" in out, err[-2000:]
    resumed = weights(repo / "models" / f"{model}.pt")
    fresh = stage(repo, "stages.train", model)
    assert fresh.wait(timeout=600) == 0
    assert all(torch.equal(resumed[k], v) for k, v in weights(repo / "models" / f"{model}.pt").items())


def test_ctrl_c_in_training_keeps_the_checkpoint_and_a_data_change_refuses_it(repo):
    ckpt = repo / "models" / "checkpoints" / "landmark_mlp.ckpt"
    out, err, _ = interrupt_after(stage(repo, "stages.train", "landmark_mlp"), f"epoch 2/{EPOCHS}")
    assert "Traceback" not in err, err[-2000:]
    assert "interrupted; the checkpoint after epoch" in err and str(ckpt) in err and "resumes" in err
    assert ckpt.exists() and not (repo / "models" / "landmark_mlp.pt").exists()

    # the data change: another subset. Resuming would mix two datasets in one model.
    set_params(repo, **{"data.limit": 50})
    run_dvc(repo, "repro", "meshes", env=QUIET)
    resumed = stage(repo, "stages.train", "landmark_mlp")
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-2000:]
    assert "was made with other params, data or training code; starting from epoch 1" in out
    assert "resuming" not in out
    after_refusal = weights(repo / "models" / "landmark_mlp.pt")
    fresh = stage(repo, "stages.train", "landmark_mlp")  # no checkpoint now: a clean run on the new data
    assert fresh.wait(timeout=600) == 0
    after_fresh = weights(repo / "models" / "landmark_mlp.pt")
    assert all(torch.equal(after_refusal[k], after_fresh[k]) for k in after_fresh)


def test_resume_after_ctrl_c_with_nothing_changed_gives_the_same_model(repo):
    _, err, _ = interrupt_after(stage(repo, "stages.train", "landmark_mlp"), f"epoch 3/{EPOCHS}")
    assert "the checkpoint after epoch" in err
    assert_resumed_equals_fresh(repo, "landmark_mlp")


def test_resume_with_the_weight_average_mixup_and_cutmix_gives_the_same_model(repo):
    """The average is part of the checkpoint and the mixing draws from the run's seeded stream:
    an interrupted and resumed cnn is the uninterrupted one, bit for bit."""
    set_params(repo, **{"train.ema": 0.9, "train.mixup": 0.2, "models.cnn.cutmix": 1.0, "models.cnn.epochs": 6})
    ckpt = repo / "models" / "checkpoints" / "cnn.ckpt"
    _, err, _ = interrupt_after(stage(repo, "stages.train", "cnn"), "epoch 2/6")
    assert "the checkpoint after epoch" in err, err[-2000:]
    saved = torch.load(ckpt, weights_only=False)
    average = saved["average"]["model"]
    assert saved["average"]["updates"] > 0
    assert any(not torch.equal(average[k], v) for k, v in saved["model"].items() if v.is_floating_point())
    assert_resumed_equals_fresh(repo, "cnn")
    config = torch.load(repo / "models" / "cnn.pt", weights_only=True)["training"]["config"]
    assert (config["ema"], config["mixup"], config["cutmix"]) == (0.9, 0.2, 1.0)


def interrupted_tracked_training(repo: Path):
    """landmark_mlp, tracked, stopped by a Ctrl-C after epoch 3: (client, experiment id, its run, checkpoint)."""
    mlflow = pytest.importorskip("mlflow")
    set_params(repo, **{"models.landmark_mlp.epochs": EPOCHS})  # enough left that the Ctrl-C lands in training
    _, err, _ = interrupt_after(stage(repo, "stages.train", "landmark_mlp", tracking=True), f"epoch 3/{EPOCHS}")
    assert "the checkpoint after epoch" in err, err[-2000:]
    client = mlflow.MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("fer3d").experiment_id
    first = client.search_runs([experiment], "attributes.run_name = 'landmark_mlp'", order_by=["start_time DESC"])[0]
    assert first.info.status == "KILLED", err[-2000:]
    checkpoint = torch.load(repo / "models" / "checkpoints" / "landmark_mlp.ckpt", weights_only=False)
    assert checkpoint["tracked"]["run_id"] == first.info.run_id
    return client, experiment, first, checkpoint


def test_a_resumed_training_logs_on_in_the_mlflow_run_of_its_first_epochs(repo):
    """One run holds the whole curve: the interrupted run is reopened (KILLED, then FINISHED), its
    epochs 1..N are each logged once, and the resumed part says where it started. Where the run is
    gone (deleted), a new one holds the whole curve and names the old one."""
    client, experiment, first, checkpoint = interrupted_tracked_training(repo)
    again = stage(repo, "stages.train", "landmark_mlp", tracking=True)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-2000:]
    assert f"continuing MLflow run {first.info.run_id}" in out and "train: resuming" in out
    [run] = client.search_runs([experiment], "attributes.run_name = 'landmark_mlp'")
    assert run.info.run_id == first.info.run_id and run.info.status == "FINISHED"
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "train_loss")) == list(
        range(1, EPOCHS + 1)
    )
    assert run.data.metrics["resumed_from_epoch"] == checkpoint["state"]["epoch"] >= 3
    assert run.data.params["epochs"] == str(EPOCHS)

    client.delete_run(run.info.run_id)
    client, experiment, gone, checkpoint = interrupted_tracked_training(repo)
    client.delete_run(gone.info.run_id)
    again = stage(repo, "stages.train", "landmark_mlp", tracking=True)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-2000:]
    assert "is gone or elsewhere; starting a new run" in out
    [run] = client.search_runs([experiment], "attributes.run_name = 'landmark_mlp'")
    assert run.data.tags["fer3d.continues_run"] == gone.info.run_id and run.info.status == "FINISHED"
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "train_loss"))
    assert steps == list(range(1, EPOCHS + 1)) and run.data.metrics["resumed_from_epoch"] >= 3


def busy_children(pid: int, cpu_seconds: float) -> list[int]:
    """The child processes of `pid` that have used `cpu_seconds` of CPU so far (Linux /proc)."""
    busy = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:  # it ended in between
                continue
            if (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") >= cpu_seconds:
                busy.append(int(child))
    return busy


def test_ctrl_c_in_landmarks_with_two_workers_stops_within_seconds(repo):
    # ~11,000 images (4,000 training rows, all of PublicTest and PrivateTest): ~21 s of FaceMesh for
    # two workers at the 530 images/s of the fastest machine measured, so the stage is still running
    # when both workers are seen busy (a fixed 12 s sleep was not: ~4,500 images ended within it on CI)
    set_params(repo, **{"data.limit": 4000, "landmarks.workers": 2})
    run_dvc(repo, "repro", "download", env=QUIET)
    (repo / "data" / "landmarks.npz").unlink(missing_ok=True)
    proc = stage(repo, "stages.landmarks")
    deadline = time.monotonic() + 120
    # both spawned workers have loaded FaceMesh and are extracting (the pool's resource tracker uses no CPU)
    while len(busy_children(proc.pid, cpu_seconds=2.0)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the stage ended before it could be interrupted"
    assert len(busy_children(proc.pid, cpu_seconds=2.0)) == 2, "two landmark workers were expected to be busy"
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 10
    assert proc.returncode == 130 and "interrupted; nothing written" in err and "Traceback" not in err
    assert not (repo / "data" / "landmarks.npz").exists()
    assert not list((repo / "data").glob("*.tmp*")) and not list((repo / "data").glob(".*landmarks*"))
