"""landmark_mlp `members`: an ensemble of MLPs in one model — in training each member's logits and
its own loss, in evaluation the log of the members' mean probabilities; one member is the model as
it always was (same state_dict keys, same initial weights)."""

import pytest
import torch
from torch.nn import functional as F

from fer3d.models import build_model
from fer3d.training.loop import classification_loss
from tests.unit.test_models import CONTEXT, sample


def test_one_member_is_the_model_as_before():
    torch.manual_seed(0)
    single = build_model("landmark_mlp", edge_lengths=True, standardise=True, **CONTEXT)
    torch.manual_seed(0)
    explicit = build_model("landmark_mlp", edge_lengths=True, standardise=True, members=1, **CONTEXT)
    keys = list(single.state_dict())
    # the keys model files written before `members` hold: a committed file still loads
    assert keys[:3] == ["norm.running_mean", "norm.running_var", "norm.num_batches_tracked"]
    assert keys[3:5] == ["mlp.0.weight", "mlp.0.bias"] and keys[-2:] == ["mlp.8.weight", "mlp.8.bias"]
    assert keys == list(explicit.state_dict())
    for k, v in single.state_dict().items():
        assert torch.equal(v, explicit.state_dict()[k]), k
    single.eval()
    assert single(sample("landmarks")).shape == (4, 7)


def test_members_train_apart_and_answer_their_mean_probability():
    torch.manual_seed(0)
    model = build_model("landmark_mlp", standardise=True, members=3, **CONTEXT)
    x = sample("landmarks", batch=8)
    model.train()
    member_logits = model(x)
    assert member_logits.shape == (8, 3, 7)
    first = [m[0].weight for m in model.mlp]
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[1], first[2])  # own initial weights
    model.eval()
    with torch.no_grad():
        z = model.encode(x)
        mean = torch.stack([m(z).softmax(-1) for m in model.mlp], 1).mean(1)
        out = model(x)
    assert out.shape == (8, 7)
    torch.testing.assert_close(out.softmax(-1), mean, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(8), atol=1e-5, rtol=0)  # already log-probabilities


@pytest.mark.parametrize("soft", [False, True])
def test_member_loss_is_the_mean_of_each_members_own_loss(soft):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 2, 7, generator=g, requires_grad=True)
    target = torch.randn(5, 7, generator=g).softmax(-1) if soft else torch.randint(0, 7, (5,), generator=g)
    loss = classification_loss(logits, target, label_smoothing=0.1)
    own = [F.cross_entropy(logits[:, k], target, label_smoothing=0.1) for k in range(2)]
    torch.testing.assert_close(loss, (own[0] + own[1]) / 2)
    # a member's gradient comes from its own loss only: no co-adaptation through a shared output
    loss.backward()
    alone = logits.detach().clone().requires_grad_(True)
    (F.cross_entropy(alone[:, 0], target, label_smoothing=0.1) / 2).backward()
    torch.testing.assert_close(logits.grad[:, 0], alone.grad[:, 0])
    # plain (B, C) logits are the usual cross-entropy
    flat = logits.detach()[:, 0]
    plain = F.cross_entropy(flat, target, label_smoothing=0.1)
    torch.testing.assert_close(classification_loss(flat, target, 0.1), plain)


def test_a_bad_member_count_is_named():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=r"model 'landmark_mlp': members must be a positive int, got"):
            build_model("landmark_mlp", members=bad, **CONTEXT)
