"""Late fusion: the log-linear rule, its weights fitted on validation rows, the one no-mesh rule and
models/fusion.json."""

import numpy as np
import pytest
import torch

from fer3d.inference.fusion import Fusion, fuse, load_fusions, save_fusions
from fer3d.inference.fusion import fit_weights as fit_fusion_weights
from fer3d.training.loop import make_optimizer


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def noisy_model(y, strength, seed, classes=7):
    """Probabilities that favour the true class by `strength` logits under Gaussian noise."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(y), classes))
    logits[np.arange(len(y)), y] += strength
    return softmax(logits).astype(np.float32)


def test_fuse_is_the_weighted_log_linear_rule():
    y = np.arange(50) % 7
    p, q = noisy_model(y, 1.0, 0), noisy_model(y, 2.0, 1)
    np.testing.assert_allclose(fuse([p], [1.0]), p, atol=1e-6)
    np.testing.assert_allclose(fuse([p, q], [1.0, 0.0]), p, atol=1e-6)
    expected = softmax(0.3 * np.log(p) + 0.7 * np.log(q))
    np.testing.assert_allclose(fuse([p, q], [0.3, 0.7]), expected, atol=1e-6)
    np.testing.assert_allclose(fuse([p, q], [1, 1]).sum(1), 1, atol=1e-6)


def test_a_model_left_out_of_a_row_does_not_vote_there():
    y = np.arange(20) % 7
    p2d, p3d = noisy_model(y, 1.0, 0), noisy_model(y, 1.0, 1)
    found = np.arange(20) % 2 == 0
    fused = fuse([p2d, p3d], [1.0, 1.0], [np.ones(20, bool), found])
    np.testing.assert_allclose(fused[~found], p2d[~found], atol=1e-6)
    np.testing.assert_allclose(fused[found], softmax(np.log(p2d[found]) + np.log(p3d[found])), atol=1e-6)


def test_fitted_weights_favour_the_informative_model_and_beat_each_alone():
    y = np.random.default_rng(3).integers(0, 7, 3000)
    strong, weak, useless = noisy_model(y, 2.0, 10), noisy_model(y, 1.0, 11), noisy_model(y, 0.0, 12)
    w = fit_fusion_weights([strong, weak, useless], y)
    assert (w >= 0).all() and w[0] > w[1] > w[2]
    assert w[2] < 0.1 * w[0]
    np.testing.assert_array_equal(w, fit_fusion_weights([strong, weak, useless], y))  # deterministic
    fused_acc = (fuse([strong, weak, useless], w).argmax(1) == y).mean()
    assert fused_acc > (strong.argmax(1) == y).mean()


def test_optimizers_by_name():
    model = torch.nn.Linear(3, 2)
    sgd = make_optimizer(model, {"name": "m", "optimizer": "sgd", "lr": 0.1, "weight_decay": 5e-4, "momentum": 0.8})
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.8
    assert isinstance(make_optimizer(model, {"name": "m", "lr": 0.1, "weight_decay": 0.0}), torch.optim.AdamW)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_optimizer(model, {"name": "m", "optimizer": "rmsprop", "lr": 0.1, "weight_decay": 0.0})


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_a_fused_optimizer_takes_the_same_steps_in_one_kernel(optimizer):
    """`fused_optimizer` changes how the update runs, not what it computes: 20 steps of a small MLP
    end within float rounding of the default path's, and without the key torch's default path runs."""
    batches = [
        (torch.randn(16, 5, generator=torch.Generator().manual_seed(i)), torch.arange(16) % 3) for i in range(20)
    ]
    cfg = {"name": "m", "optimizer": optimizer, "lr": 0.01, "weight_decay": 0.05}
    weights = {}
    for fused in (False, True):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
        start = torch.cat([q.detach().flatten() for q in model.parameters()])
        opt = make_optimizer(model, {**cfg, "fused_optimizer": True} if fused else cfg)
        assert opt.defaults["fused"] is (True if fused else None)
        for x, y in batches:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        weights[fused] = torch.cat([q.detach().flatten() for q in model.parameters()])
        assert (weights[fused] - start).abs().max() > 1e-3  # it trained
    torch.testing.assert_close(weights[True], weights[False], rtol=0, atol=1e-5)


PRIOR = [0.14, 0.02, 0.14, 0.25, 0.17, 0.11, 0.17]


def test_no_mesh_rule_3d_members_sit_out_and_a_3d_only_fusion_gives_the_prior():
    y = np.arange(12) % 7
    p2d, p3d_a, p3d_b = noisy_model(y, 1.0, 0), noisy_model(y, 1.0, 1), noisy_model(y, 1.0, 2)
    has_mesh = np.arange(12) % 3 != 0
    probas = {"cnn": p2d, "landmark_mlp": p3d_a, "mesh_gnn": p3d_b}
    both = Fusion("fusion", ["cnn", "landmark_mlp"], [0.5, 0.8], ["2d", "3d"], PRIOR)
    fused = both.combine(probas, has_mesh)
    np.testing.assert_allclose(fused[~has_mesh], fuse([p2d[~has_mesh]], [0.5]), atol=1e-6)
    np.testing.assert_allclose(fused[has_mesh], fuse([p2d[has_mesh], p3d_a[has_mesh]], [0.5, 0.8]), atol=1e-6)
    only_3d = Fusion("fusion_3d", ["landmark_mlp", "mesh_gnn"], [1.0, 0.3], ["3d", "3d"], PRIOR)
    fused = only_3d.combine(probas, has_mesh)
    # before this rule such faces got uniform probabilities, whose argmax is class 0 ("angry")
    np.testing.assert_allclose(fused[~has_mesh], np.tile(np.float32(PRIOR), ((~has_mesh).sum(), 1)))
    assert (fused[~has_mesh].argmax(1) == int(np.argmax(PRIOR))).all()
    np.testing.assert_allclose(fused[has_mesh], fuse([p3d_a[has_mesh], p3d_b[has_mesh]], [1.0, 0.3]), atol=1e-6)


def test_fusion_file_round_trip_keeps_full_precision(tmp_path):
    weights = [0.123456789012345, 1.0 / 3.0]
    rows = {"fusion": Fusion("fusion", ["cnn", "landmark_mlp"], weights, ["2d", "3d"], PRIOR)}
    path = save_fusions(tmp_path / "fusion.json", rows, ["angry"] * 7)
    loaded = load_fusions(path)
    assert loaded["fusion"].weights == weights and loaded["fusion"].members == ["cnn", "landmark_mlp"]
    (tmp_path / "bad.json").write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="bad.json: not a fer3d fusion file"):
        load_fusions(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="missing.json: no fusion file"):
        load_fusions(tmp_path / "missing.json")
