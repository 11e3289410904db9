"""The weight average (`train.ema`): the arithmetic, BatchNorm statistics, and a round trip."""

import pytest
import torch

from fer3d.training.averaging import WeightAverage


def small_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))


def test_the_average_follows_the_weights_with_the_warmed_up_decay():
    net = small_net()
    average = WeightAverage(net, decay=0.9)
    expected = {k: v.clone() for k, v in net.state_dict().items()}
    for step in range(1, 30):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.1 * step)
        net.train()(torch.randn(5, 3))  # moves the BatchNorm running statistics too
        average.update(net)
        d = min(0.9, (1 + step) / (10 + step))  # 0.18 at the first step, 0.9 from step 80 on
        for k, v in net.state_dict().items():
            expected[k] = d * expected[k] + (1 - d) * v if v.dtype.is_floating_point else v.clone()
    for k, v in average.model.state_dict().items():
        assert torch.allclose(v, expected[k], atol=1e-5), k
    assert average.model.state_dict()["1.num_batches_tracked"] == 29  # counters are copied
    assert not torch.allclose(average.model[0].weight, net[0].weight)  # it lags behind


def test_the_average_is_not_trained_and_survives_a_round_trip():
    net = small_net()
    average = WeightAverage(net, decay=0.99)
    assert not any(p.requires_grad for p in average.model.parameters()) and not average.model.training
    average.update(net)
    restored = WeightAverage(small_net(), decay=0.99)
    restored.load_state_dict(average.state_dict())
    assert restored.updates == 1
    assert all(
        torch.equal(a, b) for a, b in zip(restored.model.state_dict().values(), average.model.state_dict().values())
    )


def test_a_decay_outside_0_1_is_refused():
    for bad in (0, 1, 1.5):
        with pytest.raises(ValueError, match="decay must be in"):
            WeightAverage(small_net(), bad)
