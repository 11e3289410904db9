"""Which torch device `device: auto | cpu | cuda | cuda:N` in params.yaml means here."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"params.yaml: device must be auto, cpu, cuda or cuda:N, found {name!r}") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"params.yaml: device is {name!r} but CUDA is not available here; use auto or cpu")
    return device
