"""Grad-CAM for the 2D models: where in the 48x48 face the evidence for a class lies.

The map is ReLU(sum_k w_k A_k) over the channels A_k of the model's last feature map, w_k the
spatial mean of d logit_class / d A_k, upsampled to 48x48 (bilinear). The feature map is found
generically: the input of the global pooling layer (the last nn.Conv2d's activations after its
BN/ReLU and any residual sum), or the last nn.Conv2d's output (layer="conv", or no global pool).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import EMOTIONS, TEST
from ..inference.classifier import Classifier
from .plots import _pyplot
from .plots import _save as save_figure


def last_conv(model: torch.nn.Module) -> torch.nn.Conv2d:
    """The last nn.Conv2d registered in the model (the deepest in these feed-forward nets)."""
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__}: no nn.Conv2d layer, so no Grad-CAM (2D image models only)")
    return convs[-1]


def global_pool(model: torch.nn.Module) -> torch.nn.Module | None:
    """The last nn.AdaptiveAvgPool2d / AdaptiveMaxPool2d (the global pool before the classifier)."""
    pools = [m for m in model.modules() if isinstance(m, (torch.nn.AdaptiveAvgPool2d, torch.nn.AdaptiveMaxPool2d))]
    return pools[-1] if pools else None


def _feature_hook(model: torch.nn.Module, layer: str, saved: dict):
    """Register the hook that keeps the feature map Grad-CAM weighs: `conv`, the last Conv2d's
    output; `pool`, the input of the global pool, i.e. the last conv's activations after its
    BN/ReLU and, in the ResNet, after the residual sum (the last conv alone there is only the
    residual branch, whose map is often all negative); `auto`, pool when there is one."""
    pool = global_pool(model) if layer in ("auto", "pool") else None
    if layer == "pool" and pool is None:
        raise ValueError(f"{type(model).__name__}: no global pooling layer to take the feature map from")
    if pool is not None:
        return pool.register_forward_pre_hook(lambda _m, args: saved.__setitem__("a", args[0]))
    if layer not in ("auto", "conv"):
        raise ValueError(f"layer must be auto, pool or conv, found {layer!r}")

    def keep(_module, _inputs, out):
        saved["a"] = out
        return out.clone()  # later in-place ops (ReLU(inplace=True)) then leave the kept output intact

    return last_conv(model).register_forward_hook(keep)


@dataclass
class Cam:
    map: np.ndarray  # (48,48) float32 >= 0, scaled to max 1 (all zeros: no positive evidence)
    class_index: int
    probability: float  # the model's softmax probability of that class
    probabilities: np.ndarray  # (C,)
    class_name: str = ""  # set by cams_for_images from the model file's classes

    @property
    def label(self) -> str:
        return self.class_name or EMOTIONS[self.class_index]


def class_index(value: str | int | None, classes: Sequence[str] = EMOTIONS, model: str = "") -> int | None:
    """'happy' / 3 / None → an index into `classes`, the model file's own (None: the predicted class)."""
    if value is None:
        return None
    index = None
    number = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)  # 3, or an argmax
    if number or (isinstance(value, str) and value.isdigit()):
        index = int(value)
    elif isinstance(value, str) and value in classes:
        index = list(classes).index(value)
    if index is None or not 0 <= index < len(classes):
        of = f"{model}'s classes" if model else "the classes"
        raise ValueError(f"class must be one of {of} {', '.join(classes)} (or 0..{len(classes) - 1}), found {value!r}")
    return index


def _target_indices(target: int | Sequence[int] | None, logits: torch.Tensor) -> torch.Tensor:
    if target is None:
        return logits.argmax(1)
    if isinstance(target, int | np.integer):
        return torch.full((len(logits),), int(target), device=logits.device)
    return torch.as_tensor(np.asarray(target, np.int64), device=logits.device)


def gradcam(
    model: torch.nn.Module, x: torch.Tensor, target: int | Sequence[int] | None = None, layer: str = "auto"
) -> list[Cam]:
    """Grad-CAM of each image of the standardised batch x (B,1,H,W) for class `target` (one for all,
    one per image, or None: each image's predicted class from this plain forward pass), on the
    feature map `layer` names (see _feature_hook). Runs where the model's weights are."""
    saved: dict[str, torch.Tensor] = {}
    handle = _feature_hook(model, layer, saved)
    model.eval()
    x = x.detach().to(next(model.parameters()).device)
    try:
        with torch.enable_grad():
            logits = model(x).float()
            classes = _target_indices(target, logits)
            chosen = logits.gather(1, classes[:, None]).sum()
            grads = torch.autograd.grad(chosen, saved["a"])[0]
    finally:
        handle.remove()
    activations = saved["a"].detach()
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cams = F.relu((weights * activations).sum(1, keepdim=True))
    cams = F.interpolate(cams, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    cams = (cams / cams.flatten(1).max(1).values.clamp_min(1e-12)[:, None, None]).cpu()
    probs = logits.detach().softmax(1).cpu().numpy()
    return [Cam(c.numpy().astype(np.float32), int(k), float(p[k]), p) for c, k, p in zip(cams, classes.tolist(), probs)]


def cams_for_images(
    classifier: Classifier, images: np.ndarray, target: str | int | None = None, layer: str = "auto"
) -> list[Cam]:
    """Grad-CAM on 48x48 uint8 crops (N,48,48), standardised as the model file says, of `target` (a
    name or index of the model's own classes; None: the class `fer3d predict` gives). The class and
    probabilities shown are predict's (with the model's test-time views); the map is of the plain view."""
    if classifier.kind != "image":
        raise ValueError(f"{classifier.name}: Grad-CAM needs a 2D image model, this one takes {classifier.kind}")
    probabilities = classifier.predict_proba(crops=images)
    index = class_index(target, classifier.classes, classifier.name)
    targets = probabilities.argmax(1) if index is None else np.full(len(images), index)
    cams = gradcam(classifier.model, classifier.encode(crops=images), targets, layer)
    for cam, p in zip(cams, probabilities):
        cam.probabilities, cam.probability = p, float(p[cam.class_index])
        cam.class_name = classifier.classes[cam.class_index]
    return cams


def overlay(image: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """RGB float (48,48,3): the gray crop with the jet-coloured map blended where it is high."""
    import matplotlib

    gray = np.repeat((np.asarray(image, np.float32) / 255)[..., None], 3, axis=2)
    heat = matplotlib.colormaps["jet"](cam)[..., :3]
    alpha = 0.5 * cam[..., None] + 0.15
    return np.clip((1 - alpha) * gray + alpha * heat, 0, 1)


def _save(fig, path: str | Path) -> Path:
    return save_figure(fig, path, dpi=110)


def _title(model_name: str, cam: Cam, note: str = "") -> str:
    if not cam.map.any():
        note = "no positive evidence" + (f"; {note}" if note else "")
    return f"{model_name}: {cam.label} {cam.probability:.2f}" + (f"\n{note}" if note else "")


def save_overlay(path: str | Path, image: np.ndarray, cam: Cam, model_name: str, note: str = "") -> Path:
    """One PNG: the crop and its Grad-CAM overlay side by side, titled model/class/probability."""
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(4.4, 2.6))
    a.imshow(image, cmap="gray", vmin=0, vmax=255)
    a.set_title("input", fontsize=9)
    b.imshow(overlay(image, cam.map))
    b.set_title(_title(model_name, cam, note), fontsize=9)
    for ax in (a, b):
        ax.axis("off")
    return _save(fig, path)


def save_grid(
    path: str | Path, images: Sequence[np.ndarray], cams: dict[str, list[Cam]], captions: Sequence[str] | None = None
) -> Path:
    """One PNG: a row per image (the crop, then each model's overlay), a column per model."""
    plt = _pyplot()
    names = list(cams)
    rows, cols = len(images), len(names) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.1 * rows), squeeze=False)
    for r, image in enumerate(images):
        axes[r, 0].imshow(image, cmap="gray", vmin=0, vmax=255)
        axes[r, 0].set_title(captions[r] if captions else "input", fontsize=8)
        for c, name in enumerate(names, start=1):
            axes[r, c].imshow(overlay(image, cams[name][r].map))
            axes[r, c].set_title(_title(name, cams[name][r]), fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def sample_rows(label: np.ndarray, split: np.ndarray, n: int, test_split: int = TEST) -> np.ndarray:
    """n PrivateTest rows, deterministic: the first of each class in file order, then the second
    of each class, ... (one per class where possible)."""
    per_class = [np.flatnonzero((split == test_split) & (label == c)) for c in range(int(label.max()) + 1)]
    picks: list[int] = []
    depth = 0
    while len(picks) < n and depth < max((len(p) for p in per_class), default=0):
        picks += [int(p[depth]) for p in per_class if depth < len(p)]
        depth += 1
    return np.array(picks[:n], np.int64)


def save_sample_sheet(
    path: str | Path,
    model_name: str,
    images: np.ndarray,
    labels: np.ndarray,
    cams: list[Cam],
    classes: tuple[str, ...] = EMOTIONS,
) -> Path:
    """One model's Grad-CAM on sample images: 4 per row, titled true class / prediction."""
    plt = _pyplot()
    cols = min(4, len(images))
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 2.8 * rows), squeeze=False)
    for ax, image, y, cam in zip(axes.flat, images, labels, cams):
        ax.imshow(overlay(image, cam.map))
        ax.set_title(
            f"labelled {classes[y]}\n{cam.label} {cam.probability:.2f}",
            fontsize=8,
            color="black" if cam.label == classes[y] else "firebrick",
        )
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"Grad-CAM {model_name} (predicted class), PrivateTest samples", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def gradcam_samples(
    out_dir: Path,
    classifiers: Sequence[Classifier],
    images: np.ndarray,
    label: np.ndarray,
    split: np.ndarray,
    classes: Sequence[str],
    n: int,
) -> list[Path]:
    """out_dir/<model>.png for each 2D model: Grad-CAM of the predicted class on n fixed
    PrivateTest images (one per class where possible), labelled as the run's label set labels them
    (`label` in `classes`; rows it drops carry split -1). 3D models are skipped."""
    rows = sample_rows(label, split, n) if n > 0 else []
    if len(rows) == 0:
        return []
    images, labels = images[rows], label[rows].astype(int)
    return [
        save_sample_sheet(out_dir / f"{c.name}.png", c.name, images, labels, cams_for_images(c, images), tuple(classes))
        for c in classifiers
        if c.kind == "image"
    ]


# ------------------------------------------------------------------ 3D: per-point explanations


def point_saliency(
    classifier: Classifier, points: np.ndarray, target: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """What a landmark model attends to: |d logit / d point| (L2 over x, y, z) per point, for
    crop-frame faces (N,478,3) and class `target` (None: each face's predicted class). Returns
    (saliency (N,478), probabilities (N,7))."""
    if classifier.kind != "landmarks":
        raise ValueError(
            f"{classifier.name}: attention colouring needs a model with input 'landmarks' "
            f"(landmark_mlp, landmark_cnn, mesh_gnn), this one takes {classifier.kind}"
        )
    points = np.asarray(points, np.float32).astype(np.float16).astype(np.float32)  # as predict stores meshes
    probabilities = classifier.predict_proba(points=points, has_mesh=np.ones(len(points), bool))
    model = classifier.model
    model.eval()
    x = classifier.encode(points=points).to(next(model.parameters()).device).requires_grad_(True)
    with torch.enable_grad():
        logits = model(x).float()
        targets = probabilities.argmax(1) if target is None else np.full(len(x), target)
        classes = _target_indices(targets, logits)
        grads = torch.autograd.grad(logits.gather(1, classes[:, None]).sum(), x)[0]
    return grads.norm(dim=-1).cpu().numpy(), probabilities


def displacement(points: np.ndarray, mean_face: np.ndarray) -> np.ndarray:
    """Per point, the distance (unit-RMS frame) of each Procrustes-aligned face (N,478,3) from the
    neutral mean training face: where the expression moved the face."""
    from ..face3d.geometry import procrustes_align

    mean_face = np.asarray(mean_face, np.float32)
    return np.linalg.norm(procrustes_align(points, mean_face) - mean_face, axis=-1)
