"""params.yaml: load it, check it before any work starts, and resolve each model's settings."""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

# Global training knobs; a model's section under `models:` may override any of them.
GLOBAL_TRAINING_KEYS = ("seed", "device", "lr", "epochs", "batch_size")


class ParamError(ValueError):
    """A missing or invalid parameter; the message names the key, the expectation and the value."""


def repo_root() -> Path:
    """The project root: FER3D_ROOT if set, else the working directory when it holds dvc.yaml (DVC
    runs stages there, and a copy of the project must use its own files), else this package's parent."""
    if os.environ.get("FER3D_ROOT"):
        return Path(os.environ["FER3D_ROOT"])
    if (Path.cwd() / "dvc.yaml").exists():
        return Path.cwd()
    return Path(__file__).resolve().parent.parent


def load(path: str | Path | None = None) -> dict[str, Any]:
    path = Path(path) if path else repo_root() / "params.yaml"
    if not path.exists():
        raise ParamError(f"{path}: params file not found")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ParamError(f"{path}: not valid YAML ({e})") from e
    if not isinstance(params, dict):
        raise ParamError(f"{path}: expected a mapping of parameters, found {type(params).__name__}")
    return params


def get(params: dict, dotted: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """params['a']['b'] for 'a.b', with an error naming the key when it is missing or mistyped."""
    node: Any = params
    for i, part in enumerate(dotted.split(".")):
        if not isinstance(node, dict) or part not in node:
            raise ParamError(f"params.yaml: missing key {'.'.join(dotted.split('.')[:i + 1])!r}")
        node = node[part]
    if kind is not None and (not isinstance(node, kind) or (isinstance(node, bool) and kind in (int, float, (int, float)))):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ParamError(f"params.yaml: {dotted} must be {names}, found {node!r}")
    return node


def positive(params: dict, dotted: str, kind: type | tuple = (int, float), allow_zero: bool = False) -> Any:
    value = get(params, dotted, kind)
    if value < 0 or (value == 0 and not allow_zero):
        raise ParamError(f"params.yaml: {dotted} must be {'>= 0' if allow_zero else '> 0'}, found {value!r}")
    return value


def model_config(params: dict, name: str) -> dict[str, Any]:
    """The settings one model trains with: the globals, then `train:`, then `models.<name>`."""
    models = get(params, "models", dict)
    if name not in models:
        raise ParamError(f"params.yaml: unknown model {name!r}; models: defines {sorted(models)}")
    section = models[name] or {}
    if not isinstance(section, dict):
        raise ParamError(f"params.yaml: models.{name} must be a mapping, found {section!r}")
    cfg: dict[str, Any] = {k: get(params, k) for k in GLOBAL_TRAINING_KEYS}
    cfg.update(copy.deepcopy(get(params, "train", dict)))
    cfg.update(copy.deepcopy(section))
    cfg["name"] = name
    check_training_config(cfg)
    return cfg


def check_training_config(cfg: dict[str, Any]) -> None:
    where = f"models.{cfg['name']}"
    numbers = {"lr": float, "weight_decay": float, "label_smoothing": float, "warmup": float,
               "epochs": int, "batch_size": int, "patience": int, "seed": int, "workers": int}
    for key, kind in numbers.items():
        if key not in cfg:
            raise ParamError(f"params.yaml: missing key {key!r} (global or under {where})")
        value = cfg[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind is int:
            ok = ok and float(value).is_integer()
        if not ok:
            raise ParamError(f"params.yaml: {key} for {where} must be a{'n integer' if kind is int else ' number'}, "
                             f"found {value!r}")
    for key in ("lr", "epochs", "batch_size"):
        if cfg[key] <= 0:
            raise ParamError(f"params.yaml: {key} for {where} must be > 0, found {cfg[key]!r}")
    for key in ("weight_decay", "patience", "workers"):
        if cfg[key] < 0:
            raise ParamError(f"params.yaml: {key} for {where} must be >= 0, found {cfg[key]!r}")
    for key in ("label_smoothing", "warmup"):
        if not 0 <= cfg[key] < 1:
            raise ParamError(f"params.yaml: {key} for {where} must be in [0, 1), found {cfg[key]!r}")
    optimizer = cfg.get("optimizer", "adamw")
    if optimizer not in ("adamw", "sgd"):
        raise ParamError(f"params.yaml: optimizer for {where} must be adamw or sgd, found {optimizer!r}")
    momentum = cfg.get("momentum", 0.9)
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
        raise ParamError(f"params.yaml: momentum for {where} must be in [0, 1), found {momentum!r}")
    if cfg.get("family") not in ("2d", "3d"):
        raise ParamError(f"params.yaml: {where}.family must be '2d' or '3d', found {cfg.get('family')!r}")
    device = str(cfg["device"])
    if not (device in ("auto", "cpu", "cuda") or device.startswith("cuda:")):
        raise ParamError(f"params.yaml: device must be auto, cpu, cuda or cuda:N, found {device!r}")


def models_of_family(params: dict, family: str) -> list[str]:
    return [name for name, section in get(params, "models", dict).items() if (section or {}).get("family") == family]
