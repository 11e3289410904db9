"""The one training loop for every model: AdamW (or SGD with Nesterov momentum) with a one-cycle schedule, label smoothing,
batch augmentation, validation-only model selection with early stopping, a resumable checkpoint
each epoch, mixed precision on GPU, fixed seeds."""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .features import FeatureSet
from .io import atomic_path

VAL = 1  # fer3d.SPLITS index of the validation split (PublicTest)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"params.yaml: device is {name!r} but CUDA is not available here; use auto or cpu")
    return device


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    # deterministic kernels: the same params and seed give the same metrics on the same machine
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def config_hash(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class TrainResult:
    best_epoch: int
    best_val_acc: float
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False
    resumed_from_epoch: int = 0


@torch.no_grad()
def predict_proba(model: torch.nn.Module, features: FeatureSet, index: np.ndarray, device: torch.device,
                  batch_size: int = 512, tta_flip: bool = True) -> np.ndarray:
    """Class probabilities (len(index), C) for rows `index`; with tta_flip, averaged with the
    mirrored input's."""
    model.eval()
    out = []
    for start in range(0, len(index), batch_size):
        x = features.batch(index[start:start + batch_size], device)
        with _autocast(device):
            p = model(x).float().softmax(1)
            if tta_flip:
                p = (p + model(features.mirror(x)).float().softmax(1)) / 2
        out.append(p.cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


OPTIMIZERS = ("adamw", "sgd")


def make_optimizer(model: torch.nn.Module, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    """AdamW, or SGD with Nesterov momentum (`optimizer: sgd`, `momentum`), at the peak `lr`."""
    name = str(cfg.get("optimizer", "adamw"))
    lr, decay = float(cfg["lr"]), float(cfg["weight_decay"])
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=decay)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=float(cfg.get("momentum", 0.9)),
                               nesterov=True, weight_decay=decay)
    raise ValueError(f"{cfg.get('name')}: optimizer must be one of {OPTIMIZERS}, found {name!r}")


def _autocast(device: torch.device):
    # bf16 autocast on GPU (no loss scaling needed); full fp32 on CPU, where it is faster anyway
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)


def fit(model: torch.nn.Module, features: FeatureSet, cfg: dict[str, Any], checkpoint: Path,
        tracker=None, progress: bool = True) -> TrainResult:
    """Train on the training split, select the epoch with the best validation accuracy, and leave
    those weights in `model`. `checkpoint` is written each epoch and resumed from when it exists
    and was made with the same config."""
    from tqdm import tqdm

    seed_everything(int(cfg["seed"]))
    device = resolve_device(str(cfg["device"]))
    model.to(device)
    if features.kind == "image":
        model.to(memory_format=torch.channels_last)
    train_index = features.indices(0)
    val_index = features.indices(VAL)
    if len(train_index) == 0 or len(val_index) == 0:
        raise ValueError(f"{cfg['name']}: no usable rows in the training ({len(train_index)}) or validation "
                         f"({len(val_index)}) split")
    batch_size = int(cfg["batch_size"])
    steps_per_epoch = max(1, len(train_index) // batch_size)  # drop the ragged last batch (BatchNorm)
    epochs = int(cfg["epochs"])
    optimizer = make_optimizer(model, cfg)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=float(cfg["lr"]), total_steps=epochs * steps_per_epoch,
                                                   pct_start=float(cfg["warmup"]))
    generator = torch.Generator().manual_seed(int(cfg["seed"]))
    state = {"epoch": 0, "best_val_acc": -1.0, "best_epoch": 0, "best_state": None, "history": [], "bad_epochs": 0}
    key = config_hash({k: v for k, v in cfg.items() if k not in ("device", "workers")})
    resumed = _resume(checkpoint, key, model, optimizer, schedule, generator, state)
    start = time.perf_counter()
    labels = torch.from_numpy(features.label)
    stopped_early = False
    for epoch in range(state["epoch"], epochs):
        model.train()
        epoch_start = time.perf_counter()
        order = torch.from_numpy(train_index)[torch.randperm(len(train_index), generator=generator)]
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"{cfg['name']} {epoch + 1}/{epochs}", disable=not progress,
                   leave=False, mininterval=5)
        for step in bar:
            idx = order[step * batch_size:(step + 1) * batch_size]
            x = features.augment(features.batch(idx, device), generator)
            if features.kind == "image":
                x = x.contiguous(memory_format=torch.channels_last)
            y = labels[idx].to(device)
            with _autocast(device):
                logits = model(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=float(cfg["label_smoothing"]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(idx)
        train_seconds = time.perf_counter() - epoch_start
        proba = predict_proba(model, features, val_index, device, tta_flip=bool(cfg.get("tta_flip", True)))
        val_y = features.label[val_index]
        val_acc = float((proba.argmax(1) == val_y).mean())
        val_loss = float(-np.log(np.clip(proba[np.arange(len(val_y)), val_y], 1e-7, 1)).mean())
        row = {"epoch": epoch + 1, "train_loss": round(loss_sum / seen, 5), "train_acc": round(correct / seen, 5),
               "val_loss": round(val_loss, 5), "val_acc": round(val_acc, 5), "lr": schedule.get_last_lr()[0],
               "seconds": round(time.perf_counter() - epoch_start, 2),
               "train_samples_per_second": round(seen / train_seconds, 1)}
        state["history"].append(row)
        if val_acc > state["best_val_acc"]:
            state.update(best_val_acc=val_acc, best_epoch=epoch + 1, bad_epochs=0,
                         best_state={k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch + 1
        # one line per epoch even without progress bars, so `dvc repro` logs show the curve
        print(f"{cfg['name']} epoch {epoch + 1}/{epochs}: train loss {row['train_loss']:.3f} acc {row['train_acc']:.3f}"
              f" | val acc {val_acc:.4f} (best {state['best_val_acc']:.4f} @ {state['best_epoch']}) | {row['seconds']:.0f} s",
              flush=True)
        if tracker is not None:
            tracker.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch + 1)
        _save_checkpoint(checkpoint, key, model, optimizer, schedule, generator, state)
        patience = int(cfg["patience"])
        if patience and state["bad_epochs"] >= patience:
            stopped_early = True
            break
    model.load_state_dict(state["best_state"])
    return TrainResult(best_epoch=state["best_epoch"], best_val_acc=state["best_val_acc"], history=state["history"],
                       seconds=time.perf_counter() - start + sum(r["seconds"] for r in state["history"][:resumed]),
                       stopped_early=stopped_early, resumed_from_epoch=resumed)


def _save_checkpoint(path: Path, key: str, model, optimizer, schedule, generator, state) -> None:
    with atomic_path(path, suffix=".ckpt") as tmp:
        torch.save({"config_hash": key, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(), "generator": generator.get_state(),
                    "torch_rng": torch.get_rng_state(), "state": state}, tmp)


def _resume(path: Path, key: str, model, optimizer, schedule, generator, state) -> int:
    """Load `path` into the training objects if it belongs to this config; return its epoch."""
    if not path.exists():
        return 0
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a checkpoint from an older code version or a broken file: start over
        print(f"train: ignoring unreadable checkpoint {path} ({e})")
        return 0
    if ckpt.get("config_hash") != key:
        print(f"train: {path} was made with other params; starting from epoch 1")
        return 0
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    schedule.load_state_dict(ckpt["schedule"])
    generator.set_state(ckpt["generator"])
    torch.set_rng_state(ckpt["torch_rng"])
    state.update(ckpt["state"])
    print(f"train: resuming {path} after epoch {state['epoch']}")
    return int(state["epoch"])

