"""train.validate_last / validate_every: which epochs are validated, that skipping the others leaves
training untouched (same losses, same weights at every validated epoch's choice), and bad values named."""

import numpy as np
import pytest
import torch

from fer3d import params
from fer3d.models import build_model
from fer3d.params import ParamError
from fer3d.training import features
from fer3d.training.loop import fit, validation_due
from tests.conftest import ROOT


def due(epochs: int, last: float, every: int) -> list[int]:
    cfg = {"epochs": epochs, "validate_last": last, "validate_every": every}
    return [e for e in range(1, epochs + 1) if validation_due(e, cfg)]


def test_the_last_fraction_every_epoch_and_every_nth_before_it():
    assert due(60, 0.25, 5) == [5, 10, 15, 20, 25, 30, 35, 40, 45, *range(46, 61)]
    assert due(8, 0.25, 5) == [5, 7, 8]  # vgg's default: the last two of eight
    assert due(25, 0.25, 5) == [5, 10, 15, *range(19, 26)]  # 6.25 rounds up to 7 epochs
    assert due(4, 0.25, 0) == [4]  # the last epoch always
    assert due(10, 0.3, 0) == [8, 9, 10]  # 0.3 * 10 is 3.0000000000000004 in floats, still 3
    assert due(12, 1, 1) == list(range(1, 13))
    assert due(12, 1.0, 0) == list(range(1, 13))
    # without the keys (params.yaml from before them), every epoch as before
    assert [e for e in range(1, 7) if validation_due(e, {"epochs": 6})] == list(range(1, 7))


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("validate_last", 0, r"validate_last for models.cnn must be a fraction of the epochs in \(0, 1\]"),
        ("validate_last", 1.5, r"validate_last .* found 1.5"),
        ("validate_last", True, r"validate_last .* found True"),
        ("validate_every", -1, r"validate_every for models.cnn must be an integer >= 0 .* found -1"),
        ("validate_every", 2.5, r"validate_every .* found 2.5"),
    ],
)
def test_a_bad_value_is_named_with_what_was_expected(key, value, message):
    p = params.load(ROOT / "params.yaml")
    p["models"]["cnn"][key] = value
    with pytest.raises(ParamError, match=message):
        params.model_config(p, "cnn")


def test_the_defaults_validate_the_last_quarter_and_every_fifth_epoch():
    cfg = params.model_config(params.load(ROOT / "params.yaml"), "resnet")
    assert (cfg["validate_last"], cfg["validate_every"]) == (0.25, 5)


def small_images(fer) -> features.FeatureSet:
    arrays = fer.arrays()
    return features._images(arrays, arrays["label"].astype(np.int64), arrays["split"], {"flip": True})


def train_cnn(feats, checkpoint, epochs: int, last: float, every: int):
    cfg = params.model_config(params.load(ROOT / "params.yaml"), "cnn")
    cfg.update(epochs=epochs, batch_size=32, validate_last=last, validate_every=every, patience=0, precision="fp32")
    torch.manual_seed(int(cfg["seed"]))
    model = build_model("cnn", num_classes=7)
    result = fit(model, feats, cfg, checkpoint=checkpoint, progress=False)
    return result, {k: v.clone() for k, v in model.state_dict().items()}


def test_skipped_validations_leave_training_untouched_on_real_faces(fer_full, tmp_path):
    from fer3d.data.fer2013 import stratified_subset

    feats = small_images(stratified_subset(fer_full, 400, seed=0))  # 400 faces a split, ~10 s
    every, every_weights = train_cnn(feats, tmp_path / "every.ckpt", epochs=6, last=1.0, every=1)
    sparse, sparse_weights = train_cnn(feats, tmp_path / "sparse.ckpt", epochs=6, last=0.5, every=2)
    # the same training, epoch for epoch: validation draws no random numbers and changes no weights
    assert [r["train_loss"] for r in sparse.history] == [r["train_loss"] for r in every.history]
    assert [r["train_acc"] for r in sparse.history] == [r["train_acc"] for r in every.history]
    # epochs 2, 4, 5, 6 are validated, with the numbers the every-epoch run saw; 1 and 3 are empty
    assert [r["epoch"] for r in sparse.history if r["val_acc"] is None] == [1, 3]
    for s, e in zip(sparse.history, every.history):
        assert s["val_acc"] is None or s["val_acc"] == e["val_acc"]
    # the chosen epoch is the best of those validated, with its weights
    validated = [r for r in every.history if r["epoch"] in (2, 4, 5, 6)]
    best = max(validated, key=lambda r: (r["val_acc"], -r["epoch"]))
    assert sparse.best_epoch == best["epoch"]
    # as in the pipeline, the one-cycle schedule's best epoch is in the validated end: the same model
    assert every.best_epoch in (4, 5, 6), every.history
    assert sparse.best_epoch == every.best_epoch
    assert all(torch.equal(sparse_weights[k], every_weights[k]) for k in every_weights)
