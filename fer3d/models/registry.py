"""The model registry: every model the pipeline trains, registered by name (fer3d.models
imports the modules that register them).

`build_model(name, num_classes, **options)` builds one from its params.yaml section plus the
context the training code passes (CONTEXT_KEYS). Inputs, all float32 batches:

- image:     (B, 1, 48, 48) standardised pixels
- landmarks: (B, 478, 3) centred, unit-RMS, Procrustes-aligned MediaPipe points
- distances: (B, E) mesh edge lengths, standardised per edge
- voxels:    (B, 1, G, G, G) occupancy 0/1

Every model returns logits (B, num_classes). Default sizes are picked so training on two CPU
cores is quick (bench/models_speed.py measures them).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

FAMILIES = ("2d", "3d")
INPUTS = ("image", "landmarks", "distances", "voxels")
# Keys the training code passes to every builder; a builder takes the ones it needs, the rest are dropped.
CONTEXT_KEYS = frozenset({"grid", "edges", "num_edges", "num_points"})
# params.yaml model sections repeat the registry's family/input; accepted when they agree with it.
SPEC_KEYS = ("family", "input")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    input: str
    builder: Callable[..., nn.Module]

    def options(self) -> dict[str, Any]:
        """The tunable (non-context) options of this model with their defaults."""
        return {
            p.name: p.default
            for p in inspect.signature(self.builder).parameters.values()
            if p.kind == p.KEYWORD_ONLY and p.name not in CONTEXT_KEYS
        }

    def context(self) -> set[str]:
        return {p for p in inspect.signature(self.builder).parameters if p in CONTEXT_KEYS}


MODELS: dict[str, ModelSpec] = {}


def register(name: str, family: str, input: str):  # noqa: A002 - mirrors the params.yaml key
    """Class/function decorator: `builder(num_classes, *, option=default, ...) -> nn.Module`."""
    if family not in FAMILIES:
        raise ValueError(f"model {name!r}: family must be one of {FAMILIES}, got {family!r}")
    if input not in INPUTS:
        raise ValueError(f"model {name!r}: input must be one of {INPUTS}, got {input!r}")

    def deco(builder):
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        params = inspect.signature(builder).parameters
        bad = [p.name for p in params.values() if p.name != "num_classes" and p.kind != p.KEYWORD_ONLY]
        if bad:
            raise TypeError(f"model {name!r}: builder options must be keyword-only, not {bad}")
        MODELS[name] = ModelSpec(name, family, input, builder)
        return builder

    return deco


def model_options(name: str) -> dict[str, Any]:
    """Tunable options of a model and their defaults (what params.yaml may set)."""
    return _spec(name).options()


def _spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def build_model(name: str, num_classes: int = 7, **options: Any) -> nn.Module:
    """Build a registered model; unknown names or options raise ValueError."""
    spec = _spec(name)
    allowed = spec.options()
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        if key in CONTEXT_KEYS:
            if key in spec.context() and value is not None:
                kwargs[key] = value
        elif key in SPEC_KEYS:
            if value is not None and value != getattr(spec, key):
                raise ValueError(
                    f"model {name!r}: {key}={value!r} disagrees with the registry ({key}={getattr(spec, key)!r})"
                )
        elif key in allowed:
            kwargs[key] = value
        else:
            raise ValueError(
                f"model {name!r}: unknown option {key!r}; allowed options: {', '.join(sorted(allowed)) or '(none)'}"
            )
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"model {name!r}: num_classes must be an int >= 2, got {num_classes!r}")
    model = spec.builder(num_classes, **kwargs)
    model.model_name = name
    return model


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def mean_probability_logits(member_logits: torch.Tensor) -> torch.Tensor:
    """(B, K, C) member logits → (B, C) log of the members' mean probabilities (logsumexp: no log(0))."""
    return torch.logsumexp(member_logits.log_softmax(-1), 1) - math.log(member_logits.shape[1])


def positive_int(name: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"model {name!r}: {key} must be a positive int, got {value!r}")
    return value


def probability(name: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"model {name!r}: {key} must be in [0, 1), got {value!r}")
    return float(value)


def classifier_head(features: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(features, num_classes))


def init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
