"""fer3d.training.tracking against real MLflow: a local tracking server (round trip, a crash mid-run, an old
server without MLflow 3's logged-model API), an unreachable URI, the local sqlite default, off."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
mlflow = pytest.importorskip("mlflow")

from fer3d.training import tracking  # noqa: E402
from fer3d.training.tracking import Tracker  # noqa: E402
from tests.integration.mlflow_proxy import OLD_SERVER, MlflowProxy  # noqa: E402

WARNING = "tracking: MLflow at"


def free_port() -> int:
    """A local port nothing listens on (bound and released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch):
    """Each test sees a known environment, and whatever the tracker exports is undone afterwards."""
    saved = dict(os.environ)
    for key in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_EXPERIMENT_ID",
        "DAGSHUB_REPO",
        "DAGSHUB_USER_TOKEN",
        "DAGSHUB_USERNAME",
        "FER3D_TRACKING",
        *tracking.HTTP_DEFAULTS,
    ):
        os.environ.pop(key, None)
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["FER3D_ROOT"] = str(tmp_path)  # never the project's own mlflow.db
    monkeypatch.chdir(tmp_path)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def small_model(seed: int = 0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def train_like(tracker: Tracker, out: Path, epochs: range, between=None) -> dict:
    """What the training loop does: params, per-epoch metrics, files written, artifact, model."""
    model = small_model()
    tracker.log_params({"model": "cnn", "opt": {"lr": 0.01, "momentum": 0.9}, "epochs": len(epochs)})
    history = []
    for epoch in epochs:
        row = {"train_loss": 1.0 / (epoch + 1), "val_acc": 0.5 + 0.1 * epoch}
        history.append(row)
        tracker.log_metrics(row, step=epoch)
        if between is not None:
            between(epoch)
    tracker.log_metrics({"best_val_acc": max(r["val_acc"] for r in history)})
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / "cnn.pt")
    (out / "cnn.json").write_text(json.dumps(history))
    tracker.log_artifact(out / "cnn.pt", artifact_path="models")
    tracker.log_model(model, name="model")
    return {"model": model, "history": history}


def test_round_trip_through_server(mlflow_server, tmp_path):
    os.environ["MLFLOW_TRACKING_URI"] = mlflow_server
    with Tracker(experiment="fer3d-rt", run_name="cnn", tags={"family": "2d"}) as tracker:
        result = train_like(tracker, tmp_path / "models", range(3))
        tracker.log_params({"model": "cnn"})  # the same value again: skipped, not an error
    assert tracker.status == "ok"
    assert os.environ["MLFLOW_TRACKING_URI"] == mlflow_server and "MLFLOW_EXPERIMENT_ID" not in os.environ

    client = mlflow.MlflowClient(mlflow_server)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "cnn" and run.data.tags["family"] == "2d"
    assert run.data.params == {"model": "cnn", "opt.lr": "0.01", "opt.momentum": "0.9", "epochs": "3"}
    for key in ("train_loss", "val_acc"):
        history = sorted(client.get_metric_history(tracker.run_id, key), key=lambda m: m.step)
        assert [m.step for m in history] == [0, 1, 2]
        assert [m.value for m in history] == pytest.approx([r[key] for r in result["history"]])
    assert run.data.metrics["best_val_acc"] == pytest.approx(0.7)

    local = client.download_artifacts(tracker.run_id, "models/cnn.pt", str(tmp_path / "dl"))
    assert Path(local).read_bytes() == (tmp_path / "models" / "cnn.pt").read_bytes()

    logged = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert [m.source_run_id for m in logged] == [tracker.run_id]  # in the run's experiment, not "Default"
    mlflow.set_tracking_uri(mlflow_server)
    try:
        loaded = mlflow.pytorch.load_model(f"runs:/{tracker.run_id}/model")
    finally:
        mlflow.set_tracking_uri(None)
    x = torch.randn(5, 6)
    assert torch.equal(loaded(x), result["model"](x))


def test_body_exception_propagates_and_marks_run_failed(mlflow_server):
    os.environ["MLFLOW_TRACKING_URI"] = mlflow_server
    with pytest.raises(ZeroDivisionError), Tracker(experiment="fer3d-rt", run_name="boom") as tracker:
        tracker.log_metrics({"train_loss": 1.0}, step=0)
        raise ZeroDivisionError("a failure inside the run")
    assert tracker.status == "ok"
    assert mlflow.MlflowClient(mlflow_server).get_run(tracker.run_id).info.status == "FAILED"


def test_changed_param_and_bad_metric_warn_but_keep_tracking(mlflow_server, capfd):
    os.environ["MLFLOW_TRACKING_URI"] = mlflow_server
    with Tracker(experiment="fer3d-rt", run_name="warn") as tracker:
        tracker.log_params({"lr": 0.1})
        tracker.log_params({"lr": 0.2})
        tracker.log_metrics({"val_acc": "n/a", "train_loss": 0.5}, step=1)
    assert tracker.status == "ok"
    err = capfd.readouterr().err
    assert "param 'lr' already logged as '0.1'" in err and "metric 'val_acc' is not a number" in err
    run = mlflow.MlflowClient(mlflow_server).get_run(tracker.run_id)
    assert run.data.params == {"lr": "0.1"} and run.data.metrics == {"train_loss": 0.5}


def test_server_without_logged_model_api_gets_model_as_artifacts(mlflow_server, tmp_path, capfd):
    proxy = MlflowProxy(mlflow_server, refused=OLD_SERVER)
    try:
        os.environ["MLFLOW_TRACKING_URI"] = proxy.url
        with Tracker(experiment="fer3d-old", run_name="cnn") as tracker:
            result = train_like(tracker, tmp_path / "models", range(2))
    finally:
        proxy.close()
    assert tracker.status == "ok"
    assert "model was logged as run artifacts under 'model'" in capfd.readouterr().err
    client = mlflow.MlflowClient(mlflow_server)
    assert "model/MLmodel" in [a.path for a in client.list_artifacts(tracker.run_id, "model")]
    loaded = mlflow.pytorch.load_model(client.download_artifacts(tracker.run_id, "model", str(tmp_path / "dl")))
    x = torch.randn(4, 6)
    assert torch.equal(loaded(x), result["model"](x))


@pytest.mark.slow
def test_server_killed_mid_run(mlflow_server_factory, tmp_path, capfd):
    server = mlflow_server_factory("doomed")
    os.environ["MLFLOW_TRACKING_URI"] = server.url

    def crash_after_second_epoch(epoch):
        if epoch == 1:
            server.kill()

    start = time.monotonic()
    with Tracker(experiment="fer3d-crash", run_name="cnn") as tracker:
        result = train_like(tracker, tmp_path / "models", range(5), between=crash_after_second_epoch)
    elapsed = time.monotonic() - start

    assert tracker.status.startswith("failed: log metrics"), tracker.status
    err = capfd.readouterr().err
    assert err.count(WARNING) == 1, err
    assert "training continues, DVC outputs are unaffected" in err and "Connection refused" in err
    assert elapsed < 60, f"a dead server stalled training for {elapsed:.0f} s"
    # the training's own outputs are whole
    state = torch.load(tmp_path / "models" / "cnn.pt", weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in result["model"].state_dict().items())
    assert json.loads((tmp_path / "models" / "cnn.json").read_text()) == result["history"]
    # and what reached the server before the crash is in its store
    client = mlflow.MlflowClient(server.db_uri)
    steps = sorted(m.step for m in client.get_metric_history(tracker.run_id, "val_acc"))
    assert steps == [0, 1]
    assert client.get_run(tracker.run_id).data.params["opt.lr"] == "0.01"
    # a checkpoint saved now names this run: a resume continues it and logs the epochs it missed
    assert tracker.reference() == {"uri": server.url, "run_id": tracker.run_id}


def test_unreachable_server_from_the_start(tmp_path, capfd):
    os.environ["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    with Tracker(experiment="fer3d", run_name="cnn") as tracker:
        failed_at = time.monotonic()
        result = train_like(tracker, tmp_path / "models", range(3))
    done = time.monotonic()
    assert tracker.status.startswith("failed: start run"), tracker.status
    assert tracker.run_id is None
    err = capfd.readouterr().err
    assert err.count(WARNING) == 1, err
    assert failed_at - start < 30 and done - failed_at < 2, (failed_at - start, done - failed_at)
    assert (tmp_path / "models" / "cnn.pt").exists() and len(result["history"]) == 3
    # the tracker's HTTP defaults were applied (the user set none)
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == tracking.HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]


def test_a_password_in_the_tracking_uri_is_never_printed(tmp_path, capfd):
    secret = "s3cr3t-Pa55word"
    os.environ["MLFLOW_TRACKING_URI"] = f"http://alice:{secret}@127.0.0.1:{free_port()}"
    os.environ["MLFLOW_TRACKING_PASSWORD"] = "an0ther-s3cret"
    with Tracker(experiment="fer3d", run_name="cnn") as tracker:
        train_like(tracker, tmp_path / "models", range(2))
        tracker.log_metrics({"bad": "not a number"})
    captured = capfd.readouterr()
    output = captured.out + captured.err
    assert WARNING in output and "***@127.0.0.1" in output  # the warning is there, redacted
    assert secret not in output and "an0ther-s3cret" not in output and secret not in tracker.status
    assert tracking.redact(f"boom at https://bob:{secret}@host/x and https://carol:pw@other") == (
        "boom at https://***@host/x and https://***@other"
    )


def test_hung_server_costs_only_the_timeout(tmp_path, capfd):
    """A server that accepts connections and never answers: bounded by the (user-set) timeout."""
    import socket

    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "1"
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        os.environ["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        with Tracker(run_name="cnn") as tracker:
            train_like(tracker, tmp_path / "models", range(3))
        elapsed = time.monotonic() - start
    assert tracker.status.startswith("failed: start run: Read timed out"), tracker.status
    assert capfd.readouterr().err.count(WARNING) == 1
    assert elapsed < 20, elapsed  # 3 tries x 1 s + backoff; with the default 10 s timeout about 32 s, once


def test_user_http_settings_are_kept(tmp_path):
    os.environ["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{free_port()}"
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    with Tracker() as tracker:
        pass
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0" and tracker.status.startswith("failed")


def test_disabled_never_imports_mlflow(tmp_path):
    code = (
        "import sys, time; from pathlib import Path; from fer3d.training.tracking import Tracker\n"
        "t = time.monotonic()\n"
        "with Tracker(run_name='cnn') as tr:\n"
        "    tr.log_params({'a': {'b': 1}}); tr.log_metrics({'x': 1.0}, step=0)\n"
        "    Path('f.txt').write_text('x'); tr.log_artifact('f.txt'); tr.log_model(object())\n"
        "assert 'mlflow' not in sys.modules, 'mlflow was imported'\n"
        "print(tr.status, round(time.monotonic() - t, 3))\n"
    )
    env = {**os.environ, "FER3D_TRACKING": "off", "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    status, seconds = out.stdout.split()
    assert status == "disabled" and float(seconds) < 0.5
    assert not (tmp_path / "mlflow.db").exists() and out.stderr == ""


def test_tracking_switch_values(monkeypatch):
    for value in ("off", "OFF", "0", "false"):
        monkeypatch.setenv("FER3D_TRACKING", value)
        assert Tracker().status == "disabled"
    monkeypatch.setenv("FER3D_TRACKING", "sometimes")
    with pytest.raises(tracking.TrackingConfigError, match="FER3D_TRACKING must be 'on' or 'off', found 'sometimes'"):
        Tracker()


def test_local_default_store(tmp_path):
    with Tracker(experiment="fer3d", run_name="landmark_mlp", tags={"family": "3d"}) as tracker:
        result = train_like(tracker, tmp_path / "models", range(3))
    assert tracker.status == "ok"
    assert tracker.uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert (tmp_path / "mlflow.db").is_file() and not (tmp_path / "mlruns").exists()
    client = mlflow.MlflowClient(tracker.uri)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.data.params["opt.lr"] == "0.01"
    assert [m.step for m in sorted(client.get_metric_history(tracker.run_id, "val_acc"), key=lambda m: m.step)] == [
        0,
        1,
        2,
    ]
    assert run.info.artifact_uri.startswith((tmp_path.resolve() / "mlartifacts").as_uri())
    assert (tmp_path / "mlartifacts").is_dir()
    assert list((tmp_path / "mlartifacts").rglob("cnn.pt"))
    mlflow.set_tracking_uri(tracker.uri)
    try:
        loaded = mlflow.pytorch.load_model(f"runs:/{tracker.run_id}/model")
    finally:
        mlflow.set_tracking_uri(None)
    x = torch.randn(3, 6)
    assert torch.equal(loaded(x), result["model"](x))


def test_a_local_failure_ends_the_run_failed_with_the_reason(tmp_path, capfd):
    """The store is healthy but the run's artifact folder cannot be made (a file sits where it goes):
    training goes on, and the run ends FAILED with the reason as a tag instead of showing RUNNING."""
    with Tracker(experiment="fer3d", run_name="cnn") as tracker:
        client = mlflow.MlflowClient(tracker.uri)
        artifacts = Path(urllib.parse.urlparse(client.get_run(tracker.run_id).info.artifact_uri).path)
        artifacts.parent.mkdir(parents=True)
        artifacts.write_text("in the way")
        result = train_like(tracker, tmp_path / "models", range(2))
    assert tracker.status.startswith("failed: log artifact"), tracker.status
    assert (tmp_path / "models" / "cnn.pt").is_file() and len(result["history"]) == 2
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["fer3d.tracking_error"].startswith("log artifact")
    assert run.data.metrics["best_val_acc"] == pytest.approx(0.6)  # what was logged before the fault stays
    assert capfd.readouterr().err.count(WARNING) == 1
    # the same fault, then Ctrl-C: the run ends KILLED (as an interrupted healthy run), with the reason
    with pytest.raises(KeyboardInterrupt), Tracker(experiment="fer3d", run_name="cnn") as stopped:
        artifacts = Path(urllib.parse.urlparse(client.get_run(stopped.run_id).info.artifact_uri).path)
        artifacts.parent.mkdir(parents=True)
        artifacts.write_text("in the way")
        stopped.log_artifact(tmp_path / "models" / "cnn.pt")
        assert stopped.status.startswith("failed: log artifact")
        raise KeyboardInterrupt
    run = client.get_run(stopped.run_id)
    assert run.info.status == "KILLED" and run.data.tags["fer3d.tracking_error"].startswith("log artifact")
    # its checkpoint names it, and the resume (the fault gone) continues it: FINISHED, the old reason dropped
    assert stopped.reference() == {"uri": stopped.uri, "run_id": stopped.run_id}
    artifacts.unlink()
    with Tracker(experiment="fer3d", run_name="cnn", continues=stopped.reference()) as resumed:
        resumed.log_artifact(tmp_path / "models" / "cnn.pt")
    run = client.get_run(stopped.run_id)
    assert resumed.continued and resumed.status == "ok" and run.info.status == "FINISHED"
    assert "fer3d.tracking_error" not in run.data.tags


def test_an_interrupted_training_is_killed_and_a_deleted_experiment_is_named(tmp_path, capfd):
    from fer3d.training.loop import TrainingInterrupted

    with pytest.raises(TrainingInterrupted), Tracker(experiment="fer3d", run_name="cnn") as tracker:
        raise TrainingInterrupted(2, tmp_path / "cnn.ckpt")  # what the loop raises on Ctrl-C
    client = mlflow.MlflowClient(tracker.uri)
    assert client.get_run(tracker.run_id).info.status == "KILLED"
    client.delete_experiment(client.get_experiment_by_name("fer3d").experiment_id)
    with Tracker(experiment="fer3d", run_name="cnn") as again:
        pass
    assert again.status.startswith("failed")  # one warning, training goes on
    assert "is deleted in" in capfd.readouterr().err and "mlflow experiments restore --experiment-id" in again.status


@pytest.fixture
def ctrl_c_raises():
    """Python's own Ctrl-C handler, as in a terminal: a runner started in the background (`nohup … &`,
    as CI may be) passes SIGINT down ignored, and then a Ctrl-C neither raises nor is deferred."""
    saved = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, saved)


def test_a_ctrl_c_during_an_mlflow_call_waits_for_it_and_a_second_one_does_not(ctrl_c_raises, capfd):
    """A Ctrl-C inside a sqlite write left the store locked and the run RUNNING (1 run in 8 here)."""
    finished = []
    with pytest.raises(KeyboardInterrupt), tracking._ctrl_c_after_the_call():
        os.kill(os.getpid(), signal.SIGINT)
        finished.append("the call")
    assert finished == ["the call"] and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert "stopping once this MLflow call returns" in capfd.readouterr().err
    with pytest.raises(KeyboardInterrupt), tracking._ctrl_c_after_the_call():  # the call fails: still stopped
        os.kill(os.getpid(), signal.SIGINT)
        raise RuntimeError("the server timed out")
    with pytest.raises(KeyboardInterrupt), tracking._ctrl_c_after_the_call():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        finished.append("not reached")
    assert finished == ["the call"] and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_while_the_run_starts_ends_it_killed(ctrl_c_raises, monkeypatch):
    """__exit__ is not called when __enter__ raises: the run made before the Ctrl-C would stay RUNNING."""
    start = Tracker._start

    def start_then_ctrl_c(self):
        start(self)
        os.kill(os.getpid(), signal.SIGINT)  # deferred to the end of the call, as a real one would be

    monkeypatch.setattr(Tracker, "_start", start_then_ctrl_c)
    tracker = Tracker(experiment="fer3d", run_name="cnn")
    with pytest.raises(KeyboardInterrupt), tracker:
        pass
    assert mlflow.MlflowClient(tracker.uri).get_run(tracker.run_id).info.status == "KILLED"


def test_a_resumed_training_continues_its_run_where_it_can(tmp_path, capfd):
    """Continuing: the same run, RUNNING again, its params kept (a changed one warns), the epochs it
    holds known. A run gone from the store, or a checkpoint from another store: a new run that names it."""
    with pytest.raises(KeyboardInterrupt), Tracker(experiment="fer3d", run_name="cnn") as first:
        first.log_params({"lr": 0.1, "workers": 2})
        for epoch in (1, 2):
            first.log_metrics({"train_loss": 1.0 / epoch}, step=epoch)
        kept = first.reference()
        raise KeyboardInterrupt
    assert kept == {"uri": first.uri, "run_id": first.run_id}
    with Tracker(experiment="fer3d", run_name="cnn", tags={"dvc.exp_name": "e1"}, continues=kept) as again:
        assert again.continued and again.logged_steps == {1, 2}
        client = mlflow.MlflowClient(again.uri)
        assert client.get_run(first.run_id).info.status == "RUNNING"
        again.log_params({"lr": 0.1, "workers": 4})
        again.log_metrics({"train_loss": 0.3}, step=3)
    assert again.run_id == first.run_id and again.status == "ok"
    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED" and run.data.params == {"lr": "0.1", "workers": "2"}
    assert run.data.tags["dvc.exp_name"] == "e1"
    assert sorted(m.step for m in client.get_metric_history(first.run_id, "train_loss")) == [1, 2, 3]
    assert "param 'workers' already logged as '2'" in capfd.readouterr().err

    with Tracker(experiment="fer3d", run_name="cnn", continues=kept) as fresh:  # finished: its model is logged
        pass
    assert not fresh.continued and "is finished; starting a new run" in capfd.readouterr().out
    client.delete_run(first.run_id)
    elsewhere = {"uri": "sqlite:////elsewhere/mlflow.db", "run_id": first.run_id}
    for previous, said in ((kept, "is gone or elsewhere"), (elsewhere, "starting a new run here")):
        with Tracker(experiment="fer3d", run_name="cnn", continues=previous) as fresh:
            pass
        assert not fresh.continued and fresh.run_id != first.run_id and fresh.logged_steps == set()
        assert client.get_run(fresh.run_id).data.tags["fer3d.continues_run"] == first.run_id
        assert said in capfd.readouterr().out


def test_a_server_error_on_resume_keeps_the_run_to_continue(mlflow_server, capfd):
    """A 503 while reopening is no proof the run is gone: tracking fails (training goes on), no run is
    split off, and the reference the next checkpoint keeps still names the run, which a later resume
    continues. A run id the store has never seen is gone: a new run that names it."""
    proxy = MlflowProxy(mlflow_server)
    os.environ["MLFLOW_TRACKING_URI"] = proxy.url
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"  # the 503 at once, not after retries
    try:
        with pytest.raises(KeyboardInterrupt), Tracker(experiment="fer3d-flaky", run_name="cnn") as first:
            first.log_metrics({"train_loss": 1.0}, step=1)
            kept = first.reference()
            raise KeyboardInterrupt
        client = mlflow.MlflowClient(mlflow_server)
        experiment_id = client.get_experiment_by_name("fer3d-flaky").experiment_id
        # an overloaded server, a gateway between deploys; a gateway's own 404 page (not MLflow's answer)
        for answer in ((503, b""), (404, b"<h1>Not Found</h1>")):
            proxy.refused = {"/runs/get": answer}
            with Tracker(experiment="fer3d-flaky", run_name="cnn", continues=kept) as flaky:
                flaky.log_metrics({"train_loss": 0.5}, step=2)  # a no-op: tracking has failed
            assert flaky.status.startswith("failed: start run") and "runs/get" in flaky.status, flaky.status
            assert not flaky.continued and flaky.run_id is None and flaky.reference() == kept
            assert [r.info.run_id for r in client.search_runs([experiment_id])] == [first.run_id]
            assert client.get_run(first.run_id).info.status == "KILLED"

        proxy.refused = {}
        with Tracker(experiment="fer3d-flaky", run_name="cnn", continues=kept) as again:
            again.log_metrics({"train_loss": 0.5}, step=2)
        assert again.continued and again.run_id == first.run_id and again.logged_steps == {1}
        assert sorted(m.step for m in client.get_metric_history(first.run_id, "train_loss")) == [1, 2]

        unknown = {**kept, "run_id": "0" * 32}
        with Tracker(experiment="fer3d-flaky", run_name="cnn", continues=unknown) as fresh:
            pass
        assert fresh.status == "ok" and not fresh.continued and fresh.run_id != first.run_id
        assert client.get_run(fresh.run_id).data.tags["fer3d.continues_run"] == "0" * 32
        assert "is gone or elsewhere" in capfd.readouterr().out
    finally:
        proxy.close()


def test_a_resumed_history_is_logged_in_batches_not_a_call_an_epoch(tmp_path):
    """400 checkpointed epochs of 3 metrics (a new run for a resumed training): 2 calls of at most
    1000 values, each of whole epochs (a resume counts an epoch with a train_loss as logged), every step
    in the store; a value that is no number is left out, and its step's others are logged."""
    with Tracker(experiment="fer3d", run_name="cnn") as tracker:
        calls = []
        log_batch = tracker._client.log_batch

        def counted(*args, **kwargs):
            calls.append([m.step for m in kwargs.get("metrics", [])])
            return log_batch(*args, **kwargs)

        tracker._client.log_batch = counted
        history = [(e, {"train_loss": 1.0 / e, "train_acc": e / 400, "lr": 0.01}) for e in range(1, 401)]
        history[9][1]["lr"] = "n/a"
        tracker.log_history(history)
    assert [len(c) for c in calls] == [998, 201] and tracker.status == "ok"  # 333 epochs, one short a value
    assert max(calls[0]) == 333 and min(calls[1]) == 334
    client = mlflow.MlflowClient(tracker.uri)
    assert sorted(m.step for m in client.get_metric_history(tracker.run_id, "train_loss")) == list(range(1, 401))
    assert len(client.get_metric_history(tracker.run_id, "lr")) == 399


def test_scores_go_to_a_stage_run_and_to_the_training_run_of_each_model_file(tmp_path, capfd):
    model_file = tmp_path / "cnn.pt"
    model_file.write_bytes(b"weights")
    with Tracker(experiment="fer3d", run_name="cnn") as older:
        older.set_tags({tracking.MODEL_MD5_TAG: tracking.file_md5(model_file)})
    time.sleep(0.01)  # start times in ms: the newer run is later
    with Tracker(experiment="fer3d-cnn", run_name="cnn") as trained:  # a model's own mlflow_experiment
        trained.set_tags({tracking.MODEL_MD5_TAG: tracking.file_md5(model_file)})
    scores = {"cnn": {"test_acc": 0.6, "ferplus_acc": None, "val_acc": 0.5}, "fusion": {"test_acc": 0.7}}
    files = {"cnn": model_file, "vgg": tmp_path / "vgg.pt"}
    (tmp_path / "vgg.pt").write_bytes(b"untracked")
    stage = tracking.log_scores("evaluate", "fer3d", scores, files, {"data.labels": "fer2013"})
    client = mlflow.MlflowClient(stage.uri)
    run = client.get_run(stage.run_id)
    assert run.data.metrics == {"cnn/test_acc": 0.6, "cnn/val_acc": 0.5, "fusion/test_acc": 0.7}  # None: no score
    assert run.data.params["models.cnn.md5"] == tracking.file_md5(model_file)
    # the newest run that wrote it; not val_acc, the name of a training run's per-epoch curve
    assert client.get_run(trained.run_id).data.metrics == {"test_acc": 0.6}
    assert client.get_run(older.run_id).data.metrics == {}
    assert "added to the training runs of 1 of 2 models (no tracked run wrote vgg)" in capfd.readouterr().out

    os.environ["FER3D_TRACKING"] = "off"
    os.environ["FER3D_ROOT"] = str(tmp_path / "elsewhere")
    assert tracking.log_scores("evaluate", "fer3d", scores, files, {}).status == "disabled"
    assert not (tmp_path / "elsewhere").exists() and capfd.readouterr().out == ""

    os.environ["FER3D_TRACKING"] = "on"
    os.environ["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{free_port()}"  # nothing listens: one warning
    assert tracking.log_scores("evaluate", "fer3d", scores, files, {}).status.startswith("failed: start run")
    captured = capfd.readouterr()
    assert captured.err.count(WARNING) == 1 and captured.out == ""


def test_dagshub_repo_gives_uri_and_credentials_only_with_a_token():
    os.environ["DAGSHUB_REPO"] = "alice/fer3d"
    assert tracking.resolve_tracking_uri() == "https://dagshub.com/alice/fer3d.mlflow"
    assert "MLFLOW_TRACKING_PASSWORD" not in os.environ and "MLFLOW_TRACKING_USERNAME" not in os.environ
    os.environ["DAGSHUB_USER_TOKEN"] = "tok123"
    assert tracking.resolve_tracking_uri() == "https://dagshub.com/alice/fer3d.mlflow"
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "alice" and os.environ["MLFLOW_TRACKING_PASSWORD"] == "tok123"
    os.environ["MLFLOW_TRACKING_URI"] = "http://127.0.0.1:1"
    assert tracking.resolve_tracking_uri() == "http://127.0.0.1:1"  # an explicit URI wins
    del os.environ["MLFLOW_TRACKING_URI"]
    os.environ["DAGSHUB_REPO"] = "alice"
    with pytest.raises(tracking.TrackingConfigError, match="DAGSHUB_REPO must be 'owner/repo'"):
        tracking.resolve_tracking_uri()
    assert tracking.redact("https://user:pw@dagshub.com/x.mlflow") == "https://***@dagshub.com/x.mlflow"
    assert tracking.redact("https://bob:p@ss@host/x") == "https://***@host/x"  # an @ in the password


def test_flatten():
    assert tracking.flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x"}) == {"a.b": 1, "a.c.d": [1, 2], "e": "x"}
