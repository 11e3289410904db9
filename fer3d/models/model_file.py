"""Trained-model files (models/<name>.pt): the weights and everything needed to turn a face into
this model's probabilities without the project around it — input kind, normalisation stats, mean
face, mirror permutation, edge-length quantisation, the FaceMesh settings the landmarks were found
with, test-time flip and shifted views, class names and the training class prior. Loadable with
torch.load(weights_only=True): no pickled code. fer3d.inference.Classifier is what reads them."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from ..io import save_bytes
from .registry import MODELS, build_model

FORMAT = "fer3d-model-2"
REQUIRED = (
    "name",
    "family",
    "input",
    "classes",
    "options",
    "context",
    "input_stats",
    "tta_flip",
    "prior",
    "state_dict",
)


def save_model(
    path: str | Path,
    model: torch.nn.Module,
    *,
    name: str,
    classes: list[str],
    options: dict,
    context: dict,
    input_stats: dict,
    tta_flip: bool,
    prior: list[float],
    landmarks: dict | None,
    training: dict,
    tta_shift: int = 0,
) -> Path:
    """`context` may hold tensors (mesh edges); everything else is plain data. `landmarks` (3D
    models): the FaceMesh attempts and confidence their landmarks were found with. `tta_shift`
    (image models): test-time views shifted this many pixels besides the flip (inputs.tta_proba);
    kept only when on, so that other files keep the bytes they had."""
    payload = {
        "format": FORMAT,
        "name": name,
        "family": MODELS[name].family,
        "input": MODELS[name].input,
        "classes": list(classes),
        "options": options,
        "context": context,
        "input_stats": input_stats,
        "tta_flip": bool(tta_flip),
        "prior": [float(p) for p in prior],
        "landmarks": landmarks,
        "training": training,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    if tta_shift:
        payload["tta_shift"] = int(tta_shift)
    # through a buffer: torch.save names the archive after the file, and the temp file's random
    # name would make identical models differ byte for byte (and in DVC's hash)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return save_bytes(path, buffer.getvalue())


def read_model_file(path: str | Path) -> dict[str, Any]:
    """The file's payload, checked; errors name the file and what was expected."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no trained model here; run `dvc repro` (or `dvc pull`) first")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for files that are not its archives
        raise ValueError(f"{path}: not a readable fer3d model file ({type(e).__name__}: {e})") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(
            f"{path}: expected a {FORMAT} model file, found {found!r}; files of older fer3d "
            "versions lack what prediction needs: re-run `dvc repro`"
        )
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise ValueError(f"{path}: model file lacks {missing}")
    if payload["name"] not in MODELS:
        raise ValueError(f"{path}: model {payload['name']!r} is not registered in this fer3d ({sorted(MODELS)})")
    return payload


def trained_precision(payload: dict[str, Any]) -> str:
    """The arithmetic a model file's recipe trained in (fp32 | bf16); files before it was recorded: fp32."""
    return str((payload.get("training") or {}).get("config", {}).get("precision", "fp32"))


def build_from_payload(payload: dict[str, Any], device: str | torch.device = "cpu") -> torch.nn.Module:
    """The model of a payload with its weights, in eval mode on `device`."""
    options = {k: v for k, v in payload["options"].items() if k != "pretrained"}  # weights are in the file
    model = build_model(payload["name"], num_classes=len(payload["classes"]), **options, **payload["context"])
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()
