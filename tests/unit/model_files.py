"""Small but complete model files (untrained weights, made-up statistics) for unit tests of what
reads them: the Classifier, the Predictor, Grad-CAM, the saliency view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fer3d.config import EMOTIONS
from fer3d.models import MODELS, build_model
from fer3d.models.model_file import save_model

ATTEMPTS = [{"pad": 24, "fill": "gray", "scale": 1, "contrast": False}]


def mean_face(seed: int = 0) -> np.ndarray:
    """A centred, unit-RMS random face (478, 3), as the meshes stage's mean face is."""
    face = np.random.default_rng(seed).normal(size=(478, 3)).astype(np.float32)
    face -= face.mean(0)
    return face / np.sqrt((face**2).sum(-1).mean())


def make_model_file(
    folder: Path,
    name: str,
    prior: list[float] | None = None,
    seed: int = 0,
    options: dict | None = None,
    tta_shift: int = 0,
    precision: str = "fp32",
    classes: tuple[str, ...] = EMOTIONS,
) -> Path:
    """folder/<name>.pt for an image or landmarks model (the input kinds that need no mesh edges),
    recorded as trained in `precision`, over `classes`."""
    torch.manual_seed(seed)
    spec = MODELS[name]
    options = options or {}
    model = build_model(name, len(classes), **options).eval()
    if spec.input == "image":
        stats, landmarks = {"mean": 0.5, "std": 0.25}, None
    elif spec.input == "landmarks":
        stats = {"mean_face": mean_face(seed).tolist(), "mirror_perm": list(range(478))}
        landmarks = {"attempts": ATTEMPTS, "min_detection_confidence": 0.3}
    else:
        raise ValueError(f"make_model_file covers image and landmarks models, not {spec.input}")
    prior = prior or [1 / len(classes)] * len(classes)
    return save_model(
        folder / f"{name}.pt",
        model,
        name=name,
        classes=list(classes),
        options=options,
        context={},
        input_stats=stats,
        tta_flip=True,
        prior=prior,
        landmarks=landmarks,
        training={"best_epoch": 1, "val_acc": 0.0, "config": {"precision": precision}},
        tta_shift=tta_shift,
    )
