"""Which torch device `device: auto | cpu | cuda | cuda:N`, which training precision
`train.precision: auto | fp32 | bf16` in params.yaml, and which scoring precision a model file
gets, mean here."""

from __future__ import annotations

import torch


def resolve_device(name: str, where: str = "params.yaml: device") -> torch.device:
    """auto, cpu, cuda or cuda:N as a torch device this machine has; ValueError naming `where`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ValueError(f"{where} must be auto, cpu, cuda or cuda:N, found {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{where} is {name!r} but CUDA is not available here; use auto or cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"{where} is {name!r} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(name: str, device: torch.device) -> str:
    """fp32 or bf16 (autocast; the weights and the optimizer stay fp32) for training on `device`.
    auto: bf16 on CUDA and on CPUs with AMX tiles (Intel Xeon Sapphire Rapids and later), where
    oneDNN's bf16 convolutions train the image nets 2-2.4x faster; fp32 on other CPUs, which have no
    bf16 matrix units and would be slower."""
    if name not in PRECISIONS:
        raise ValueError(f"params.yaml: precision must be one of {PRECISIONS}, found {name!r}")
    if name != "auto":
        return name
    return "bf16" if device.type == "cuda" or cpu_has_amx() else "fp32"


def cpu_has_amx() -> bool:
    check = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private; torch >= 2.2 has it
    return bool(check is not None and check())


def resolve_scoring_precision(name: str, device: torch.device, trained: str) -> str:
    """fp32 or bf16 (autocast; weights stay fp32) for scoring a model trained in `trained` precision
    on `device`. auto: bf16 on CUDA (as scoring there always was); on a CPU, bf16 where it has AMX
    tiles and the model trained in bf16 (resnet scores 3.1x faster, vgg 3.3x, the cnn 2.7x, voxel_cnn
    1.2x; 0.1-0.3% of answers change: README "Scoring precision"), else fp32, so a model trained in fp32
    (landmark_mlp, mesh_gnn) or scored on another CPU answers exactly as its ONNX export does."""
    if name not in PRECISIONS:
        raise ValueError(f"scoring precision must be one of {PRECISIONS}, found {name!r}")
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16"
    return "bf16" if trained == "bf16" and cpu_has_amx() else "fp32"
