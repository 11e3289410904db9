"""What the training loop refuses or keeps on real faces: a resume of a run that early stopping ended
trains no further epoch, a diverging run is an error instead of NaN weights chosen as "best", and a
schedule or batch a tiny run cannot have is named."""

import pytest
import torch

from fer3d import params
from fer3d.models import build_model
from fer3d.training.loop import TrainingInterrupted, fit
from stages.train import WRITING, interruption
from tests.conftest import ROOT
from tests.unit.test_validation_schedule import small_images


@pytest.fixture(scope="module")
def faces(fer_full):
    from fer3d.data.fer2013 import stratified_subset

    return small_images(stratified_subset(fer_full, 200, seed=0))  # 200 faces a split


def cnn_config(**changes) -> dict:
    cfg = params.model_config(params.load(ROOT / "params.yaml"), "cnn")
    cfg.update({"batch_size": 32, "precision": "fp32", "validate_last": 1.0, "validate_every": 1, **changes})
    return cfg


def train(feats, cfg, checkpoint, tracker=None):
    torch.manual_seed(int(cfg["seed"]))
    model = build_model("cnn", num_classes=7)
    result = fit(model, feats, cfg, checkpoint=checkpoint, tracker=tracker, progress=False)
    return result, model.state_dict()


class StopWhileLogging:
    """A tracker whose per-epoch log is where Ctrl-C lands (a slow server), after the epoch's checkpoint."""

    logged_steps = frozenset()

    def __init__(self, epoch: int):
        self.epoch = epoch

    def reference(self) -> None:  # no MLflow run for a checkpoint to name
        return None

    def log_history(self, steps):
        if any(step == self.epoch for step, _ in steps):
            raise KeyboardInterrupt


def test_a_run_that_stopped_early_resumes_to_the_same_model_without_training_on(faces, tmp_path):
    cfg = cnn_config(epochs=12, patience=1, lr=0.01)
    whole, whole_weights = train(faces, cfg, tmp_path / "whole.ckpt")
    assert whole.stopped_early and len(whole.history) < 12, whole.history  # the case under test
    stop = len(whole.history)
    with pytest.raises(TrainingInterrupted) as interrupted:
        train(faces, cfg, tmp_path / "cut.ckpt", tracker=StopWhileLogging(stop))
    assert interrupted.value.epochs_done == stop  # the stopping epoch's checkpoint is on disk
    resumed, resumed_weights = train(faces, cfg, tmp_path / "cut.ckpt")
    assert resumed.resumed_from_epoch == stop and resumed.stopped_early
    timeless = [{k: v for k, v in r.items() if k not in ("seconds", "train_samples_per_second")} for r in whole.history]
    assert [{k: r[k] for k in timeless[0]} for r in resumed.history] == timeless
    assert resumed.best_epoch == whole.best_epoch
    assert all(torch.equal(resumed_weights[k], v) for k, v in whole_weights.items())


def test_a_diverging_run_is_an_error_naming_the_model_and_lr(faces, tmp_path, monkeypatch):
    cfg = cnn_config(epochs=2, patience=0, lr=1e6)
    diverged = r"cnn: training diverged at epoch 1, step \d+ \(loss (nan|inf)\); lower lr \(1000000\.0\)"
    with pytest.raises(ValueError, match=diverged):
        train(faces, cfg, tmp_path / "nan.ckpt")
    # weights whose training loss stays finite but whose validation pass does not (here: forced)
    from fer3d.training import loop

    real = loop.predict_proba
    monkeypatch.setattr(loop, "predict_proba", lambda *a, **k: real(*a, **k) * float("nan"))
    with pytest.raises(ValueError, match=r"cnn: validation probabilities are not finite .*; lower lr \(0\.01\)"):
        train(faces, cnn_config(epochs=1, lr=0.01), tmp_path / "val.ckpt")


def test_schedules_and_batches_a_tiny_run_cannot_have_are_named(faces, tmp_path):
    # 5 epochs of one step at warm-up 0.2: a warm-up of exactly one step (OneCycleLR divides by zero)
    with pytest.raises(ValueError, match=r"cannot split 5 step\(s\) \(5 epochs x 1\) at warmup 0.2"):
        train(faces, cnn_config(epochs=5, batch_size=4096), tmp_path / "a.ckpt")
    with pytest.raises(ValueError, match="batch_size must be at least 2 \\(BatchNorm\\), found 1"):
        train(faces, cnn_config(epochs=1, batch_size=1), tmp_path / "b.ckpt")


def test_a_ctrl_c_says_what_the_training_left(tmp_path):
    """A second Ctrl-C while the tracker ends an interrupted or diverged run reports that first
    outcome; otherwise whether training finished, or whether a checkpoint is there to resume from."""
    checkpoint = tmp_path / "cnn.ckpt"
    first = TrainingInterrupted(5, checkpoint)
    try:
        try:
            raise first
        except TrainingInterrupted:
            raise KeyboardInterrupt from None  # the tracker's set_terminated waiting on a slow server
    except KeyboardInterrupt as second:
        assert interruption(second, False, first, checkpoint) is first
    diverged = ValueError("cnn: training diverged at epoch 3")
    assert interruption(KeyboardInterrupt(), False, diverged, checkpoint) is diverged
    ctrl_c = KeyboardInterrupt()
    assert str(interruption(ctrl_c, True, None, checkpoint)) == WRITING
    assert interruption(ctrl_c, False, None, checkpoint) is ctrl_c  # before training: nothing to keep
    checkpoint.write_bytes(b"epoch 4")
    assert interruption(ctrl_c, False, ctrl_c, checkpoint).args == (
        f"with the checkpoint {checkpoint} on disk: `dvc repro` resumes from it",
    )


def test_an_mlflow_run_is_tagged_and_named_with_its_dvc_experiment(monkeypatch):
    from fer3d.training.tracking import dvc_experiment_tags, experiment_run_name

    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    monkeypatch.delenv("DVC_EXP_BASELINE_REV", raising=False)
    assert dvc_experiment_tags() == {} and experiment_run_name("resnet") == "resnet"  # `dvc repro`: no experiment
    monkeypatch.setenv("DVC_EXP_NAME", "kinky-lees")
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "84e140f")
    assert dvc_experiment_tags() == {"dvc.exp_name": "kinky-lees", "dvc.baseline_rev": "84e140f"}
    assert experiment_run_name("resnet") == "resnet@kinky-lees"
