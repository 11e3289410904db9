"""Trained-model files (models/<name>.pt): weights plus everything needed to rebuild the model and
its inputs, loadable with torch.load(weights_only=True) (no pickled code)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from . import EMOTIONS
from .io import save_bytes
from .models import MODELS, build_model


def save_model(path: str | Path, model: torch.nn.Module, name: str, options: dict, context: dict,
               feature_stats: dict, meta: dict) -> Path:
    """`context` may hold tensors (mesh edges); everything else is plain data."""
    payload = {"format": "fer3d-model-1", "name": name, "family": MODELS[name].family, "input": MODELS[name].input,
               "classes": list(EMOTIONS), "options": options, "context": context, "feature_stats": feature_stats,
               "meta": meta, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    # through a buffer: torch.save names the archive after the file, and the temp file's random
    # name would make identical models differ byte for byte (and in DVC's hash)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return save_bytes(path, buffer.getvalue())


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """(model in eval mode on `device`, the file's metadata)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no trained model here; run `dvc repro` (or `dvc pull`) first")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != "fer3d-model-1":
        raise ValueError(f"{path}: not a fer3d model file (format {payload.get('format')!r})")
    options = {k: v for k, v in payload["options"].items() if k != "pretrained"}  # weights are in the file
    model = build_model(payload["name"], num_classes=len(payload["classes"]), **options, **payload["context"])
    model.load_state_dict(payload["state_dict"])
    model.to(device).eval()
    return model, {k: v for k, v in payload.items() if k != "state_dict"}
