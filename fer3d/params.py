"""params.yaml: load it, check it before any work starts, and resolve each model's settings."""

from __future__ import annotations

import copy
import difflib
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import yaml

from .config import MAX_TTA_SHIFT, repo_root

# Global training knobs; a model's section under `models:` may override any of them.
GLOBAL_TRAINING_KEYS = ("seed", "device", "lr", "epochs", "batch_size")
TRAIN_KEYS = (
    "weight_decay",
    "label_smoothing",
    "patience",
    "warmup",
    "workers",
    "optimizer",
    "momentum",
    "fused_optimizer",
    "tta_flip",
    "mlflow_experiment",
    "soft_labels",
    "threads",
    "precision",
    "ema",
    "mixup",
    "cutmix",
    "tta_shift",
    "validate_last",
    "validate_every",
)
# Every key params.yaml may hold, per section (models.<name> is checked against the model's own
# options by model_config). A key not here is a typo until proven otherwise.
KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "": (
        *GLOBAL_TRAINING_KEYS,
        "data",
        "landmarks",
        "voxelize",
        "meshes",
        "train",
        "models",
        "evaluate",
        "shifts",
        "report",
    ),
    "data": ("source", "sha256", "shared_dir", "limit", "labels", "group", "crops"),
    "landmarks": ("workers", "min_detection_confidence", "attempts", "mirror_average"),
    "voxelize": ("grid", "align"),
    "meshes": ("samples",),
    "train": TRAIN_KEYS,
    "evaluate": ("fusion", "extra_sets", "extra_groups"),
    "shifts": ("suite", "splits", "backend"),
    "report": ("gradcam_samples",),
}
# a model section's own keys besides training keys and model options
MODEL_SECTION_KEYS = ("family", "input", "augment")
TRACE_ENV = "FER3D_PARAMS_TRACE"  # a file to append every key a stage reads to (tests/unit/test_dvc_yaml.py)


class _Loader(yaml.SafeLoader):
    """params.yaml as DVC (YAML 1.2) reads it, not as PyYAML's YAML 1.1: `1e-3` (no dot) is a number,
    and only true/false are booleans (`yes`, `no`, `on`, `off` are strings, refused where a boolean
    goes, rather than one value here and another in `dvc exp show`)."""

    yaml_implicit_resolvers: ClassVar[dict] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class ParamError(ValueError):
    """A missing or invalid parameter; the message names the key, the expectation and the value."""


def load(path: str | Path | None = None) -> dict[str, Any]:
    path = Path(path) if path else repo_root() / "params.yaml"
    if not path.exists():
        raise ParamError(f"{path}: params file not found")
    try:
        params = yaml.load(path.read_text(), Loader=_Loader)  # a SafeLoader subclass: no objects built
    except yaml.YAMLError as e:
        raise ParamError(f"{path}: not valid YAML ({e})") from e
    if not isinstance(params, dict):
        raise ParamError(f"{path}: expected a mapping of parameters, found {type(params).__name__}")
    check_known_keys(params, str(path))
    return params


def unknown_key_error(section: str, key: Any, allowed: Any, name: str = "params.yaml") -> ParamError:
    """`section` holds `key`, which is not one of `allowed`: the message suggests the closest."""
    allowed = sorted(map(str, allowed))
    dotted = f"{section}.{key}" if section else str(key)
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    hint = f"; did you mean {(f'{section}.' if section else '') + close[0]!r}?" if close else ""
    if section == "train" and key in GLOBAL_TRAINING_KEYS:  # a right key in the wrong section
        hint = f"; {key} is set at the top level (every model) or under models.<name> (one model)."
    return ParamError(
        f"{name}: unknown key {dotted!r}{hint} Known keys {'under ' + section if section else 'at the top'}"
        f": {', '.join(allowed)}"
    )


def check_known_keys(params: dict, name: str = "params.yaml") -> None:
    """Refuse keys the pipeline does not know (top level and every fixed section)."""
    for section, allowed in KNOWN_KEYS.items():
        node = params if not section else params.get(section)
        for key in node if isinstance(node, dict) else ():
            if key not in allowed:
                raise unknown_key_error(section, key, allowed, name)


def _trace(dotted: str) -> None:
    """With FER3D_PARAMS_TRACE set, note which command read which key (`python -m stages.train cnn`
    → "stages.train cnn<TAB>models.cnn"), so a test can hold each stage's reads against dvc.yaml."""
    trace = os.environ.get(TRACE_ENV)
    if trace:
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        command = " ".join([spec.name if spec else sys.argv[0], *sys.argv[1:]])
        with open(trace, "a") as f:
            f.write(f"{command}\t{dotted}\n")


def get(params: dict, dotted: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """params['a']['b'] for 'a.b', with an error naming the key when it is missing or mistyped."""
    _trace(dotted)
    node: Any = params
    for i, part in enumerate(dotted.split(".")):
        if not isinstance(node, dict) or part not in node:
            raise ParamError(f"params.yaml: missing key {'.'.join(dotted.split('.')[: i + 1])!r}")
        node = node[part]
    if kind is not None and (
        not isinstance(node, kind) or (isinstance(node, bool) and kind in (int, float, (int, float)))
    ):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ParamError(f"params.yaml: {dotted} must be {names}, found {node!r}")
    return node


def positive(params: dict, dotted: str, kind: type | tuple = (int, float), allow_zero: bool = False) -> Any:
    value = get(params, dotted, kind)
    if value < 0 or (value == 0 and not allow_zero):
        raise ParamError(f"params.yaml: {dotted} must be {'>= 0' if allow_zero else '> 0'}, found {value!r}")
    return value


def model_config(params: dict, name: str, options: Iterable[str] | None = None) -> dict[str, Any]:
    """The settings one model trains with: the globals, then `train:`, then `models.<name>`.
    `options`: the model's own options; given, any other key in its section is refused."""
    models = params.get("models")
    if not isinstance(models, dict) or name not in models:
        defined = sorted(models) if isinstance(models, dict) else "nothing"
        raise ParamError(f"params.yaml: unknown model {name!r}; models: defines {defined}")
    section = get(params, f"models.{name}") or {}
    if not isinstance(section, dict):
        raise ParamError(f"params.yaml: models.{name} must be a mapping, found {section!r}")
    if options is not None:
        allowed = {*GLOBAL_TRAINING_KEYS, *TRAIN_KEYS, *MODEL_SECTION_KEYS, *options}
        for key in section:
            if key not in allowed:
                raise unknown_key_error(f"models.{name}", key, allowed)
    cfg: dict[str, Any] = {k: get(params, k) for k in GLOBAL_TRAINING_KEYS}
    cfg.update(copy.deepcopy(get(params, "train", dict)))
    cfg.update(copy.deepcopy(section))
    cfg["name"] = name
    # the top-level epochs is the most any model trains (`dvc exp run -S epochs=2`: a quick run of
    # every model); a model's own smaller count stands
    most = _whole_positive(get(params, "epochs"), "epochs")
    own = section.get("epochs")
    cfg["epochs"] = most if own is None else min(_whole_positive(own, f"models.{name}.epochs"), most)
    check_training_config(cfg)
    return cfg


def _whole_positive(value: Any, dotted: str) -> int:
    """An epoch count: YAML may give 2.0 or 1e1 (whole numbers, accepted as such), never true or 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer() or value < 1:
        raise ParamError(f"params.yaml: {dotted} must be a whole number > 0, found {value!r}")
    return int(value)


def check_training_config(cfg: dict[str, Any]) -> None:
    """A model's merged training settings, each checked for its type and range: a ParamError names
    the key, the model and what was found."""
    where = f"models.{cfg['name']}"
    check_numbers(cfg, where)
    check_options(cfg, where)


def check_numbers(cfg: dict[str, Any], where: str) -> None:
    """The settings every model has (global or its own): lr, epochs, batch size, ..."""
    numbers = {
        "lr": float,
        "weight_decay": float,
        "label_smoothing": float,
        "warmup": float,
        "epochs": int,
        "batch_size": int,
        "patience": int,
        "seed": int,
        "workers": int,
        "threads": int,
    }
    for key, kind in numbers.items():
        if key not in cfg:
            raise ParamError(f"params.yaml: missing key {key!r} (global or under {where})")
        value = cfg[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind is int:
            ok = ok and float(value).is_integer()
        if not ok:
            raise ParamError(
                f"params.yaml: {key} for {where} must be a{'n integer' if kind is int else ' number'}, found {value!r}"
            )
    for key in ("lr", "epochs", "batch_size"):
        if cfg[key] <= 0:
            raise ParamError(f"params.yaml: {key} for {where} must be > 0, found {cfg[key]!r}")
    for key in ("weight_decay", "patience", "workers", "threads"):
        if cfg[key] < 0:
            raise ParamError(f"params.yaml: {key} for {where} must be >= 0, found {cfg[key]!r}")
    for key in ("label_smoothing", "warmup"):
        if not 0 <= cfg[key] < 1:
            raise ParamError(f"params.yaml: {key} for {where} must be in [0, 1), found {cfg[key]!r}")


def check_options(cfg: dict[str, Any], where: str) -> None:
    """The settings with a default (optimizer, ema, validation schedule, precision, ...), the family and the device."""
    optimizer = cfg.get("optimizer", "adamw")
    if optimizer not in ("adamw", "sgd"):
        raise ParamError(f"params.yaml: optimizer for {where} must be adamw or sgd, found {optimizer!r}")
    momentum = cfg.get("momentum", 0.9)
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
        raise ParamError(f"params.yaml: momentum for {where} must be in [0, 1), found {momentum!r}")
    for key, low, high in (("ema", 0, 1), ("mixup", 0, None), ("cutmix", 0, None)):
        value = cfg.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low or (high and value >= high):
            wanted = f"in [{low}, {high})" if high else f">= {low}"
            raise ParamError(f"params.yaml: {key} for {where} must be a number {wanted}, found {value!r}")
    last = cfg.get("validate_last", 1.0)
    if isinstance(last, bool) or not isinstance(last, (int, float)) or not 0 < last <= 1:
        raise ParamError(
            f"params.yaml: validate_last for {where} must be a fraction of the epochs in (0, 1] "
            f"(1: validate every epoch), found {last!r}"
        )
    every = cfg.get("validate_every", 1)
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ParamError(
            f"params.yaml: validate_every for {where} must be an integer >= 0 (0: only the last "
            f"validate_last of the epochs), found {every!r}"
        )
    precision = cfg.get("precision", "fp32")
    if precision not in ("auto", "fp32", "bf16"):
        raise ParamError(f"params.yaml: precision for {where} must be auto, fp32 or bf16, found {precision!r}")
    shift_px = cfg.get("tta_shift", 0)
    if isinstance(shift_px, bool) or not isinstance(shift_px, int) or not 0 <= shift_px <= MAX_TTA_SHIFT:
        raise ParamError(
            f"params.yaml: tta_shift for {where} must be a whole number of pixels in [0, {MAX_TTA_SHIFT}] "
            f"(0: the flip only), found {shift_px!r}"
        )
    for key in ("tta_flip", "soft_labels", "fused_optimizer"):
        if not isinstance(cfg.get(key, False), bool):
            raise ParamError(f"params.yaml: {key} for {where} must be true or false, found {cfg[key]!r}")
    if cfg.get("family") not in ("2d", "3d"):
        raise ParamError(f"params.yaml: {where}.family must be '2d' or '3d', found {cfg.get('family')!r}")
    device = str(cfg["device"])
    if not (device in ("auto", "cpu", "cuda") or device.startswith("cuda:")):
        raise ParamError(f"params.yaml: device must be auto, cpu, cuda or cuda:N, found {device!r}")


def extra_sets(params: dict) -> tuple[dict, dict]:
    """evaluate.extra_sets (name -> folder) and extra_groups (name -> regex), a group only for a set:
    a misspelt set name in extra_groups would leave its set resampled image by image, silently."""
    sets = get(params, "evaluate.extra_sets", dict) or {}
    groups = get(params, "evaluate.extra_groups", dict) or {}
    for name in groups:
        if name not in sets:
            raise ParamError(
                f"params.yaml: evaluate.extra_groups names {name!r}, which evaluate.extra_sets lacks "
                f"(it has {sorted(sets)}): its images would be resampled one by one, not by group"
            )
    return sets, groups


def models_of_family(params: dict, family: str) -> list[str]:
    return [name for name, section in get(params, "models", dict).items() if (section or {}).get("family") == family]
