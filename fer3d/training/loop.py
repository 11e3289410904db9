"""The one training loop for every model: AdamW (or SGD with Nesterov momentum) with a one-cycle
schedule, label smoothing, batch augmentation, validation-only model selection with early
stopping, a resumable checkpoint each epoch, bf16 mixed precision where it pays (train.precision),
fixed seeds.

`fit` = set up (`Run`) → per epoch `train_one_epoch`, `validate` (on the epochs `validation_due`
names), `TrainState.record`, checkpoint."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..config import TRAIN, VAL
from ..device import resolve_device, resolve_precision, resolve_scoring_precision
from ..models.inputs import autocast, tta_proba
from ..models.registry import mean_probability_logits
from . import checkpoint as ckpt
from .augment import mix_batch
from .averaging import WeightAverage
from .features import FeatureSet
from .tracking import StoppedByUser

OPTIMIZERS = ("adamw", "sgd")


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    # deterministic kernels: the same params and seed give the same metrics on the same machine
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def make_optimizer(model: torch.nn.Module, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    """AdamW, or SGD with Nesterov momentum (`optimizer: sgd`, `momentum`), at the peak `lr`.

    `fused_optimizer`: the whole update in one fused kernel instead of torch's per-parameter loop
    (the same maths; the last bits differ, so it is off unless a model asks for it)."""
    name = str(cfg.get("optimizer", "adamw"))
    lr, decay = float(cfg["lr"]), float(cfg["weight_decay"])
    # fused=None is torch's own default path: passing it keeps the weights of unfused models bit for bit
    fused = True if cfg.get("fused_optimizer", False) else None
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=decay, fused=fused)
    if name == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=lr,
            momentum=float(cfg.get("momentum", 0.9)),
            nesterov=True,
            weight_decay=decay,
            fused=fused,
        )
    raise ValueError(f"{cfg.get('name')}: optimizer must be one of {OPTIMIZERS}, found {name!r}")


@torch.no_grad()
def predict_proba(
    model: torch.nn.Module,
    features: FeatureSet,
    index: np.ndarray,
    device: torch.device,
    batch_size: int = 512,
    tta_flip: bool = True,
    precision: str = "fp32",
) -> np.ndarray:
    """Class probabilities (len(index), C) of stored rows `index` in `precision`; with tta_flip,
    averaged with the mirrored input's (the same per-batch step as fer3d.inference.Classifier)."""
    model.eval()
    out = []
    for start in range(0, len(index), batch_size):
        x = features.batch(index[start : start + batch_size], device)
        out.append(tta_proba(model, x, features.mirror if tta_flip else None, device, precision=precision).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


@dataclass
class TrainState:
    """Everything about a run that a checkpoint must restore besides the torch objects."""

    epoch: int = 0
    best_val_acc: float = -1.0
    best_epoch: int = 0
    best_state: dict | None = None
    history: list[dict] = field(default_factory=list)
    bad_epochs: int = 0

    def record(self, row: dict, val_acc: float | None, model: torch.nn.Module) -> None:
        """Add an epoch's row; keep the weights when validation accuracy (unrounded) improved.
        An epoch that was not validated (val_acc None) is neither better nor a bad epoch."""
        self.history.append(row)
        self.epoch = row["epoch"]
        if val_acc is None:
            return
        if val_acc > self.best_val_acc:
            self.best_val_acc, self.best_epoch, self.bad_epochs = val_acc, row["epoch"], 0
            self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            self.bad_epochs += 1


class TrainingInterrupted(StoppedByUser):
    """Ctrl-C (or SIGINT) during training; the checkpoint of the last finished epoch is kept."""

    def __init__(self, epochs_done: int, checkpoint: Path):
        self.epochs_done, self.checkpoint = epochs_done, checkpoint
        kept = (
            f"the checkpoint after epoch {epochs_done} is kept in {checkpoint}; `dvc repro` resumes from it"
            if epochs_done
            else "no epoch had finished, so there is no checkpoint; `dvc repro` starts over"
        )
        super().__init__(f"interrupted; {kept}")


@dataclass
class TrainResult:
    best_epoch: int
    best_val_acc: float
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False
    resumed_from_epoch: int = 0


@dataclass
class Run:
    """The torch objects of one training run, built in the order that fixes the random streams."""

    model: torch.nn.Module
    features: FeatureSet
    cfg: dict[str, Any]
    device: torch.device
    train_index: np.ndarray
    val_index: np.ndarray
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.OneCycleLR
    generator: torch.Generator
    precision: str = "fp32"  # of the training steps' forward pass; validation is always as scoring is
    average: WeightAverage | None = None  # train.ema > 0
    saved_epoch: int = 0  # the epoch the checkpoint on disk holds (what a Ctrl-C keeps)

    @property
    def evaluated(self) -> torch.nn.Module:
        """The weights that are validated and kept: the moving average when there is one."""
        return self.average.model if self.average is not None else self.model

    @property
    def steps_per_epoch(self) -> int:
        return max(1, len(self.train_index) // int(self.cfg["batch_size"]))  # no ragged last batch (BatchNorm)

    @classmethod
    def start(cls, model: torch.nn.Module, features: FeatureSet, cfg: dict[str, Any]) -> Run:
        seed_everything(int(cfg["seed"]))
        device = resolve_device(str(cfg["device"]))
        model.to(device)
        if features.kind == "image":
            model.to(memory_format=torch.channels_last)
        train_index, val_index = features.indices(TRAIN), features.indices(VAL)
        if len(train_index) < 2 or len(val_index) == 0:  # BatchNorm needs 2 rows a batch
            raise ValueError(
                f"{cfg['name']}: too few usable rows in the training ({len(train_index)}, at least 2) or "
                f"validation ({len(val_index)}) split"
            )
        if int(cfg["batch_size"]) < 2:
            raise ValueError(f"{cfg['name']}: batch_size must be at least 2 (BatchNorm), found {cfg['batch_size']}")
        steps = max(1, len(train_index) // int(cfg["batch_size"]))
        optimizer = make_optimizer(model, cfg)
        total, warmup = int(cfg["epochs"]) * steps, float(cfg["warmup"])
        warm_end = warmup * total - 1  # OneCycleLR divides by each phase's length in steps
        if warm_end == 0 or warm_end == total - 1:
            raise ValueError(
                f"{cfg['name']}: the one-cycle schedule cannot split {total} step(s) ({cfg['epochs']} epochs x "
                f"{steps}) at warmup {cfg['warmup']} (a phase of no length); change epochs, batch_size or train.warmup"
            )
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=float(cfg["lr"]), total_steps=total, pct_start=warmup
        )
        generator = torch.Generator().manual_seed(int(cfg["seed"]))
        ema = float(cfg.get("ema", 0))
        average = WeightAverage(model, ema) if ema else None
        precision = resolve_precision(str(cfg.get("precision", "fp32")), device)
        return cls(
            model, features, cfg, device, train_index, val_index, optimizer, schedule, generator, precision, average
        )


def train_one_epoch(run: Run, epoch: int, progress: bool) -> dict:
    """One pass over the training rows in a seeded order; the epoch's loss, accuracy and speed."""
    from tqdm import tqdm

    model, features, cfg, device = run.model, run.features, run.cfg, run.device
    model.train()
    start = time.perf_counter()
    batch_size, labels = int(cfg["batch_size"]), torch.from_numpy(features.label)
    soft = torch.from_numpy(features.soft) if cfg.get("soft_labels") and features.soft is not None else None
    mixup, cutmix = float(cfg.get("mixup", 0)), float(cfg.get("cutmix", 0))
    order = torch.from_numpy(run.train_index)[torch.randperm(len(run.train_index), generator=run.generator)]
    loss_sum, correct, seen = 0.0, 0, 0
    bar = tqdm(
        range(run.steps_per_epoch),
        desc=f"{cfg['name']} {epoch}/{cfg['epochs']}",
        disable=not progress,
        leave=False,
        mininterval=5,
    )
    for step in bar:
        idx = order[step * batch_size : (step + 1) * batch_size]
        x = features.augment(features.batch(idx, device), run.generator)
        y = labels[idx].to(device)
        target = soft[idx].to(device) if soft is not None else y  # class probabilities or indices
        if mixup or cutmix:
            probs = target if soft is not None else F.one_hot(y, len(features.classes)).float()
            x, target = mix_batch(x, probs, mixup, cutmix, run.generator)
        logits, loss = train_step(run, x, target)
        run.schedule.step()
        if run.average is not None:
            run.average.update(model)
        if not math.isfinite(loss.item()):  # NaN weights would score one class and could still be "best"
            raise ValueError(
                f"{cfg['name']}: training diverged at epoch {epoch}, step {step + 1} (loss {loss.item()}); "
                f"lower lr ({cfg['lr']}) or check the inputs"
            )
        loss_sum += loss.item() * len(idx)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(idx)
    seconds = time.perf_counter() - start
    return {
        "train_loss": round(loss_sum / seen, 5),
        "train_acc": round(correct / seen, 5),
        "train_samples_per_second": round(seen / seconds, 1),
    }


def train_step(run: Run, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward (in the run's precision), loss, backward and optimizer step on one augmented batch;
    the batch's (logits, loss). The learning-rate schedule and the weight average are the caller's."""
    if run.features.kind == "image":
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast(run.device, run.precision):
        logits = run.model(x)
        loss = classification_loss(logits.float(), target, float(run.cfg["label_smoothing"]))
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    if logits.dim() == MEMBER_LOGITS_DIMS:
        logits = mean_probability_logits(logits.float())
    return logits, loss


MEMBER_LOGITS_DIMS = 3  # (B, K, C): an ensemble model's members in training


def classification_loss(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Cross-entropy against class indices (B,) or probabilities (B, C). Member logits (B, K, C),
    an ensemble in one model (landmark_mlp's `members`), give the mean of the members' own losses:
    each learns the batch as if trained alone, rather than the ensemble co-adapting to one loss."""
    if logits.dim() == MEMBER_LOGITS_DIMS:
        target = target.repeat_interleave(logits.shape[1], 0)
        logits = logits.flatten(0, 1)
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing)


def validation_due(epoch: int, cfg: dict[str, Any]) -> bool:
    """Whether epoch `epoch` (1-based) is validated: every epoch of the schedule's last
    `validate_last` fraction (always the last epoch), and every `validate_every`-th before it.
    The fp32 flip-averaged pass costs a quarter of an image net's epoch, and under the one-cycle
    schedule the best epoch falls in the annealed end (every default model: the last fifth), so
    validating the early epochs sparsely changes no model file, only the curve's resolution."""
    epochs = int(cfg["epochs"])
    dense = max(1, math.ceil(epochs * float(cfg.get("validate_last", 1.0)) - 1e-9))
    every = int(cfg.get("validate_every", 1))
    return epoch > epochs - dense or (every > 0 and epoch % every == 0)


def validate(run: Run) -> tuple[float, float]:
    """(accuracy, log-loss) on the validation split, flip-averaged and in the precision the finished
    model will score in (bf16 for a bf16-trained net on an AMX CPU or CUDA; the pass costs a third of
    fp32's, README "Scoring precision"). A model file's shifted views (tta_shift) are left out here:
    five times the pass for each validated epoch; the evaluate stage scores the chosen epoch with them."""
    precision = resolve_scoring_precision("auto", run.device, trained=run.precision)
    proba = predict_proba(
        run.evaluated,
        run.features,
        run.val_index,
        run.device,
        tta_flip=bool(run.cfg.get("tta_flip", True)),
        precision=precision,
    )
    if not np.isfinite(proba).all():
        raise ValueError(
            f"{run.cfg['name']}: validation probabilities are not finite (the weights diverged); "
            f"lower lr ({run.cfg['lr']}) or check the inputs"
        )
    return accuracy_and_log_loss(proba, run.features.label[run.val_index])


def accuracy_and_log_loss(proba: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """What a validated epoch records, from (N, C) probabilities and labels (N,)."""
    accuracy = float((proba.argmax(1) == y).mean())
    log_loss = float(-np.log(np.clip(proba[np.arange(len(y)), y], 1e-7, 1)).mean())
    return accuracy, log_loss


def fit(
    model: torch.nn.Module,
    features: FeatureSet,
    cfg: dict[str, Any],
    checkpoint: Path,
    tracker=None,
    progress: bool = True,
    fingerprint: str = "",
) -> TrainResult:
    """Train on the training split, select the epoch with the best validation accuracy, and leave
    those weights in `model`. `checkpoint` is written each epoch and resumed from when it was made
    with the same config and the same `fingerprint` (of the input data and the training code)."""
    run = Run.start(model, features, cfg)
    state = TrainState()
    key = ckpt.key(cfg, fingerprint, run.device.type)
    resumed = ckpt.resume(checkpoint, key, run, state)
    if tracker is not None:  # the resumed epochs its run lacks: all in a new run; in a continued run any
        # whose logging the Ctrl-C cut off (the checkpoint is saved first)
        tracker.log_history([_tracked(row) for row in state.history if row["epoch"] not in tracker.logged_steps])
    start = time.perf_counter()
    try:
        stopped_early = _epochs(run, state, key, checkpoint, tracker, progress)
    except KeyboardInterrupt:
        raise TrainingInterrupted(run.saved_epoch, checkpoint) from None
    model.load_state_dict(state.best_state)
    seconds = time.perf_counter() - start + sum(r["seconds"] for r in state.history[:resumed])
    return TrainResult(
        best_epoch=state.best_epoch,
        best_val_acc=state.best_val_acc,
        history=state.history,
        seconds=seconds,
        stopped_early=stopped_early,
        resumed_from_epoch=resumed,
    )


def _epochs(run: Run, state: TrainState, key: str, checkpoint: Path, tracker, progress: bool) -> bool:
    """Train the remaining epochs, a checkpoint after each; True when early stopping ended them."""
    cfg = run.cfg
    patience = int(cfg["patience"])
    if patience and state.bad_epochs >= patience:  # resumed from the checkpoint of the epoch that stopped it
        return True
    for epoch in range(state.epoch + 1, int(cfg["epochs"]) + 1):
        epoch_start = time.perf_counter()
        trained = train_one_epoch(run, epoch, progress)
        val_acc, val_loss = validate(run) if validation_due(epoch, cfg) else (None, None)
        row = {
            "epoch": epoch,
            "train_loss": trained["train_loss"],
            "train_acc": trained["train_acc"],
            "val_loss": None if val_loss is None else round(val_loss, 5),
            "val_acc": None if val_acc is None else round(val_acc, 5),
            "lr": run.schedule.get_last_lr()[0],
            "seconds": round(time.perf_counter() - epoch_start, 2),
            "train_samples_per_second": trained["train_samples_per_second"],
        }
        state.record(row, val_acc, run.evaluated)
        # saved before logging, which may wait on a dead server: a Ctrl-C then keeps this epoch
        ckpt.save(checkpoint, key, run, state, tracker.reference() if tracker is not None else None)
        run.saved_epoch = epoch
        _log_epoch(cfg, row, state, tracker)
        if patience and state.bad_epochs >= patience:
            return True
    return False


def _log_epoch(cfg: dict, row: dict, state: TrainState, tracker) -> None:
    # one line per epoch even without progress bars, so `dvc repro` logs show the curve
    val = "not validated" if row["val_acc"] is None else f"val acc {row['val_acc']:.4f}"
    best = f"best {round(state.best_val_acc, 5):.4f} @ {state.best_epoch}" if state.best_epoch else "no best yet"
    print(
        f"{cfg['name']} epoch {row['epoch']}/{cfg['epochs']}: train loss {row['train_loss']:.3f} "
        # the best from the same 5-decimal value as the row's, so the two never print 0.5796 vs 0.5795
        f"acc {row['train_acc']:.3f} | {val} ({best}) | {row['seconds']:.0f} s",
        flush=True,
    )
    if tracker is not None:
        tracker.log_history([_tracked(row)])


def _tracked(row: dict) -> tuple[int, dict]:
    """An epoch's row as (step, metrics): an epoch that was not validated logs no val_acc."""
    return row["epoch"], {k: v for k, v in row.items() if k != "epoch" and v is not None}
