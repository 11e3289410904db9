"""train.precision: what auto means on this machine, bad values named, and every model trains under
bf16 autocast (weights stay fp32) as deterministically as in fp32."""

import pytest
import torch
from torch.nn import functional as F

from fer3d import params
from fer3d.device import cpu_has_amx, resolve_precision, resolve_scoring_precision
from fer3d.models import MODELS, build_model
from fer3d.models.inputs import autocast
from fer3d.params import ParamError
from tests.conftest import ROOT
from tests.unit.test_models import CONTEXT, sample

CPU = torch.device("cpu")


def test_auto_is_bf16_on_cuda_and_on_cpus_with_amx_else_fp32():
    assert resolve_precision("auto", CPU) == ("bf16" if cpu_has_amx() else "fp32")
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"  # a device object needs no GPU
    assert resolve_precision("fp32", torch.device("cuda")) == "fp32"
    assert resolve_precision("bf16", CPU) == "bf16"


def test_a_bad_precision_is_named_with_what_was_expected():
    with pytest.raises(ValueError, match=r"precision must be one of \('auto', 'fp32', 'bf16'\), found 'fp16'"):
        resolve_precision("fp16", CPU)
    p = params.load(ROOT / "params.yaml")
    p["models"]["resnet"]["precision"] = "half"
    with pytest.raises(ParamError, match="precision for models.resnet must be auto, fp32 or bf16, found 'half'"):
        params.model_config(p, "resnet")


def train_steps(name: str, precision: str, steps: int = 3) -> tuple[list[float], dict]:
    """Losses and final weights of a few AdamW steps on a fixed random batch, as the loop takes them."""
    torch.manual_seed(0)
    model = build_model(name, **CONTEXT)
    x = sample(MODELS[name].input, batch=16, seed=1)
    if x.dim() == 4:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    y = torch.arange(16) % 7
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        with autocast(CPU, precision):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, model.state_dict()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_trains_under_bf16_with_fp32_weights_and_the_same_bits_twice(name):
    losses, weights = train_steps(name, "bf16")
    again, same = train_steps(name, "bf16")
    fp32_losses, _ = train_steps(name, "fp32")
    assert all(torch.isfinite(torch.tensor(losses)))
    assert all(v.dtype in (torch.float32, torch.int64) for v in weights.values())  # autocast leaves weights fp32
    assert losses == again and all(torch.equal(weights[k], same[k]) for k in weights)
    # the first step's loss is the same sum in 8 bits of mantissa instead of 24: close, not equal
    assert losses[0] == pytest.approx(fp32_losses[0], rel=0.03)


def test_scoring_precision_follows_the_model_and_the_device():
    amx = "bf16" if cpu_has_amx() else "fp32"
    assert resolve_scoring_precision("auto", CPU, "fp32") == "fp32"  # landmark_mlp, mesh_gnn: as trained
    assert resolve_scoring_precision("auto", CPU, "bf16") == amx
    assert resolve_scoring_precision("auto", torch.device("cuda"), "fp32") == "bf16"  # as CUDA always scored
    assert resolve_scoring_precision("fp32", torch.device("cuda"), "bf16") == "fp32"
    assert resolve_scoring_precision("bf16", CPU, "fp32") == "bf16"
    with pytest.raises(ValueError, match="scoring precision must be one of .* found 'half'"):
        resolve_scoring_precision("half", CPU, "bf16")
    model = build_model("cnn", **CONTEXT).eval()
    with torch.no_grad():
        with autocast(CPU, "fp32"):
            assert model(sample("image")).dtype == torch.float32
        with autocast(CPU, "bf16"):
            assert model(sample("image")).dtype == torch.bfloat16
