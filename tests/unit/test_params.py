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


def test_the_top_level_epochs_is_the_most_any_model_trains():
    p = real_params()
    own = {name: params.model_config(p, name)["epochs"] for name in p["models"]}
    assert p["epochs"] >= max(own.values())  # the default cuts nobody's schedule
    p["epochs"] = 2  # `dvc exp run -S epochs=2`: a quick run of every model
    assert {name: params.model_config(p, name)["epochs"] for name in p["models"]} == dict.fromkeys(own, 2)
    p["epochs"] = 40
    assert params.model_config(p, "resnet")["epochs"] == 40 and params.model_config(p, "cnn")["epochs"] == own["cnn"]
    del p["models"]["cnn"]["epochs"]
    assert params.model_config(p, "cnn")["epochs"] == 40  # a model without its own: the top-level count
    p["epochs"] = 2.0  # YAML's 2.0 (or 1e1) is a whole number: it caps like 2, as an int
    assert params.model_config(p, "resnet")["epochs"] == 2 and type(params.model_config(p, "cnn")["epochs"]) is int
    p["epochs"], p["models"]["resnet"]["epochs"] = 40, 30.0
    assert params.model_config(p, "resnet")["epochs"] == 30


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "2"])
def test_a_bad_top_level_epochs_is_named_as_the_top_level_key(value):
    p = real_params()
    p["epochs"] = value
    with pytest.raises(ParamError, match=re.escape(f"params.yaml: epochs must be a whole number > 0, found {value!r}")):
        params.model_config(p, "resnet")
    p["epochs"], p["models"]["cnn"]["epochs"] = 300, value
    with pytest.raises(ParamError, match=re.escape(f"models.cnn.epochs must be a whole number > 0, found {value!r}")):
        params.model_config(p, "cnn")


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("lr", -0.1, "lr for models.cnn must be > 0"),
        ("lr", "fast", "lr for models.cnn must be a number"),
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
        ("threads", -1, "threads for models.cnn must be >= 0, found -1"),
        ("threads", 1.5, "threads for models.cnn must be an integer, found 1.5"),
        ("ema", 1, "ema for models.cnn must be a number in [0, 1), found 1"),
        ("ema", True, "ema for models.cnn must be a number in [0, 1), found True"),
        ("mixup", -0.2, "mixup for models.cnn must be a number >= 0, found -0.2"),
        ("cutmix", "on", "cutmix for models.cnn must be a number >= 0, found 'on'"),
        ("tta_shift", -1, "tta_shift for models.cnn must be a whole number of pixels in [0, 8]"),
        ("tta_shift", 2.0, "(0: the flip only), found 2.0"),
        ("tta_shift", 9, "found 9"),
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


def write_params(tmp_path, change) -> object:
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    change(p)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(p, sort_keys=False))
    return path


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda p: p.__setitem__("epoch", 5), "unknown key 'epoch'; did you mean 'epochs'?"),
        (
            lambda p: p["train"].__setitem__("tta_fllip", True),
            "unknown key 'train.tta_fllip'; did you mean 'train.tta_flip'?",
        ),
        (
            lambda p: p["train"].__setitem__("label_smothing", 0.1),
            "unknown key 'train.label_smothing'; did you mean 'train.label_smoothing'?",
        ),
        (lambda p: p["data"].__setitem__("limt", 10), "unknown key 'data.limt'; did you mean 'data.limit'?"),
        (
            lambda p: p["train"].__setitem__("lr", 0.01),
            "unknown key 'train.lr'; lr is set at the top level (every model) or under models.<name> (one model).",
        ),
        (
            lambda p: p["report"].__setitem__("gradcam", 3),
            "unknown key 'report.gradcam'; did you mean 'report.gradcam_samples'?",
        ),
    ],
)
def test_a_typo_in_a_section_is_refused_with_a_suggestion(tmp_path, change, message):
    with pytest.raises(ParamError, match=re.escape(message)):
        params.load(write_params(tmp_path, change))


def test_a_typo_in_a_model_section_lists_the_training_keys_and_options(tmp_path):
    from fer3d.models import MODELS

    p = params.load(write_params(tmp_path, lambda p: p["models"]["cnn"].__setitem__("dropuot", 0.2)))
    with pytest.raises(ParamError, match="did you mean 'models.cnn.dropout'") as error:
        params.model_config(p, "cnn", options=MODELS["cnn"].options())
    assert "label_smoothing" in str(error.value) and "widths" in str(error.value)


@pytest.mark.parametrize(
    "model,augment,message",
    [
        ("distance_cnn", {"jiter": 0.1}, "unknown key 'models.distance_cnn.augment.jiter'; did you mean"),
        ("voxel_cnn", {"shfit": 1}, "unknown key 'models.voxel_cnn.augment.shfit'; did you mean"),
        ("cnn", {"degrees": "ten"}, "models.cnn.augment.degrees must be a number, found 'ten'"),
        ("voxel_cnn", {"shift": -1}, "models.voxel_cnn.augment: shift must be an int >= 0"),
        # YAML values that would have been coerced into something nobody meant
        ("resnet", {"erase": True}, "models.resnet.augment.erase must be a number, found True"),
        ("cnn", {"flip": "false"}, "models.cnn.augment.flip must be true or false, found 'false'"),
        ("cnn", {"scale": 1.1}, "models.cnn.augment.scale must be a [low, high] pair of numbers, found 1.1"),
        ("landmark_mlp", {"scale": [0.9]}, "models.landmark_mlp.augment.scale must be a [low, high] pair"),
        ("voxel_cnn", {"shift": 1.5}, "models.voxel_cnn.augment.shift must be a whole number, found 1.5"),
        ("cnn", {"pad": 48}, "models.cnn.augment.pad must be below 48 px, found 48"),
    ],
)
def test_augment_options_are_checked_by_name(model, augment, message):
    from fer3d.models import MODELS
    from fer3d.training.features import check_augment_options

    with pytest.raises(ParamError, match=re.escape(message)):
        check_augment_options(MODELS[model].input, augment, f"models.{model}.augment")


def test_exponent_floats_without_a_dot_are_numbers(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text().replace("lr: 0.002", "lr: 1e-3", 1))
    p = params.load(path)
    assert p["lr"] == 0.001 and params.model_config(p, "cnn")["lr"] == 0.001


def test_params_read_as_dvc_reads_them_yes_is_no_boolean(tmp_path):
    """DVC (YAML 1.2) shows `tta_flip: yes` as the string 'yes'; PyYAML's YAML 1.1 would train with
    True, so `dvc exp show` and the run would disagree. Read as DVC does, it is refused by name."""
    from dvc.utils.serialize import load_yaml

    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text().replace("  tta_flip: true", "  tta_flip: yes", 1))
    p = params.load(path)
    assert p["train"]["tta_flip"] == load_yaml(path)["train"]["tta_flip"] == "yes"
    with pytest.raises(ParamError, match="tta_flip for models.cnn must be true or false, found 'yes'"):
        params.model_config(p, "cnn")
    ours = params.load(ROOT / "params.yaml")
    assert ours == load_yaml(ROOT / "params.yaml")  # the committed file reads the same both ways


def test_cutmix_is_refused_for_a_model_without_images():
    from stages.train import model_settings

    p = real_params()
    p["models"]["landmark_mlp"]["cutmix"] = 1.0
    with pytest.raises(ParamError, match=re.escape("cutmix for models.landmark_mlp must be 0: CutMix pastes image")):
        model_settings(p, "landmark_mlp")
    p["models"]["landmark_mlp"]["cutmix"] = 0
    p["models"]["landmark_mlp"]["tta_shift"] = 2
    with pytest.raises(ParamError, match=re.escape("tta_shift for models.landmark_mlp must be 0: shifted views")):
        model_settings(p, "landmark_mlp")
    p["models"]["landmark_mlp"]["tta_shift"] = 0
    p["models"]["landmark_mlp"]["mixup"] = 0.2  # mixing points is fine
    cfg, options = model_settings(p, "landmark_mlp")
    assert cfg["mixup"] == 0.2 and "mixup" not in options and "cutmix" not in options


def test_a_model_file_records_the_regularisers_only_when_they_are_on():
    from stages.train import model_settings, recipe

    p = real_params()
    default, _ = model_settings(p, "cnn")
    assert {"ema", "mixup", "cutmix", "tta_shift", "threads"}.isdisjoint(recipe(default))
    p["train"]["ema"] = 0.999
    p["models"]["cnn"]["cutmix"] = 1.0
    on, _ = model_settings(p, "cnn")
    assert recipe(on)["ema"] == 0.999 and recipe(on)["cutmix"] == 1.0 and "mixup" not in recipe(on)


def test_a_model_may_ask_for_a_fused_optimizer_that_the_train_section_leaves_out():
    from stages.train import model_settings, recipe

    p = real_params()
    p["train"].pop("fused_optimizer", None)
    p["models"]["landmark_mlp"]["fused_optimizer"] = True
    cfg, options = model_settings(p, "landmark_mlp")
    # a training knob, not an option of the net; recorded in the model file only while on
    assert cfg["fused_optimizer"] is True and "fused_optimizer" not in options
    assert recipe(cfg)["fused_optimizer"] is True
    assert "fused_optimizer" not in recipe(model_settings(p, "cnn")[0])
    p["models"]["landmark_mlp"]["fused_optimizer"] = "yes"
    with pytest.raises(
        ParamError, match=re.escape("fused_optimizer for models.landmark_mlp must be true or false, found 'yes'")
    ):
        model_settings(p, "landmark_mlp")
