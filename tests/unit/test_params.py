import re

import pytest
import yaml

from fer3d import params
from fer3d.params import ParamError
from tests.conftest import ROOT


def real_params():
    return params.load(ROOT / "params.yaml")


def test_model_config_uses_globals_unless_the_model_overrides():
    p = real_params()
    p["lr"] = 0.0005
    p["models"]["cnn"]["lr"] = 0.01
    assert params.model_config(p, "cnn")["lr"] == 0.01
    assert params.model_config(p, "resnet")["lr"] == 0.0005
    assert params.model_config(p, "resnet")["seed"] == p["seed"]


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("lr", -0.1, "lr for models.cnn must be > 0"),
        ("lr", "fast", "lr for models.cnn must be a number"),
        ("epochs", 2.5, "epochs for models.cnn must be an integer"),
        ("device", "tpu", "device must be auto, cpu, cuda or cuda:N"),
    ],
)
def test_bad_training_params_are_named(key, value, message):
    p = real_params()
    p[key] = value
    p["models"]["cnn"].pop(key, None)  # the model's own setting would win over the global one
    with pytest.raises(ParamError, match=message.replace(".", r"\.")):
        params.model_config(p, "cnn")


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("optimizer", "adam", "optimizer for models.cnn must be adamw or sgd, found 'adam'"),
        ("momentum", 1.5, "momentum for models.cnn must be in [0, 1), found 1.5"),
    ],
)
def test_bad_optimizer_settings_are_named(key, value, message):
    p = real_params()
    p["train"][key] = value
    p["models"]["cnn"].pop(key, None)
    with pytest.raises(ParamError, match=re.escape(message)):
        params.model_config(p, "cnn")


def test_unknown_model_and_missing_key():
    p = real_params()
    with pytest.raises(ParamError, match="unknown model 'transformer'"):
        params.model_config(p, "transformer")
    del p["lr"]
    with pytest.raises(ParamError, match="missing key 'lr'"):
        params.model_config(p, "cnn")


def test_get_checks_types_and_paths(tmp_path):
    p = {"data": {"limit": "ten"}}
    with pytest.raises(ParamError, match="data.limit must be int, found 'ten'"):
        params.get(p, "data.limit", int)
    with pytest.raises(ParamError, match="missing key 'data.source'"):
        params.get(p, "data.source")
    bad = tmp_path / "params.yaml"
    bad.write_text("lr: [0.1\n")
    with pytest.raises(ParamError, match="not valid YAML"):
        params.load(bad)
    bad.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ParamError, match="expected a mapping"):
        params.load(bad)
