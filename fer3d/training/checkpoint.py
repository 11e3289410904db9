"""Per-epoch training checkpoints (models/checkpoints/<name>.ckpt): resumed only by a run with the
same params, the same input data and the same training code, so a model never mixes two."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..io import atomic_path

if TYPE_CHECKING:
    from .loop import Run, TrainState

# keys that change where or how fast a run happens, not what it computes
RUNTIME_KEYS = ("device", "workers")
# the code whose change changes what training computes
TRAINING_CODE = ("training", "models", "face3d")
TRAINING_MODULES = ("device.py",)  # picks the validation precision, so the chosen epoch


def key(cfg: dict, fingerprint: str = "", device_type: str = "cpu") -> str:
    """What a checkpoint must match to be resumed: the config, the data/code fingerprint, and the kind
    of device (a GPU computes other bits and validates in another precision than a CPU)."""
    settings = {k: v for k, v in cfg.items() if k not in RUNTIME_KEYS}
    identity = {"config": settings, "fingerprint": fingerprint}
    if device_type != "cpu":  # the key's form on a CPU is unchanged (the code digest changes with the code)
        identity["device"] = device_type
    blob = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def fingerprint(*arrays: np.ndarray | torch.Tensor) -> str:
    """A digest of the training inputs (the rows, labels and splits a run sees) and of the source
    files that turn them into a model."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        data = a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        h.update(str((data.dtype, data.shape)).encode())
        h.update(np.ascontiguousarray(data).data)
    package = Path(__file__).resolve().parent.parent
    sources = [s for folder in TRAINING_CODE for s in sorted((package / folder).glob("*.py"))]
    for source in [*sources, *(package / m for m in TRAINING_MODULES)]:
        h.update(source.name.encode())
        h.update(source.read_bytes())
    return h.hexdigest()


def save(path: Path, run_key: str, run: Run, state: TrainState, tracked: dict | None = None) -> None:
    """`tracked`: the MLflow run the epochs so far were logged to (Tracker.reference), which a resume continues."""
    with atomic_path(path, suffix=".ckpt") as tmp:
        torch.save(
            {
                "key": run_key,
                "tracked": tracked,
                "model": run.model.state_dict(),
                "optimizer": run.optimizer.state_dict(),
                "schedule": run.schedule.state_dict(),
                "generator": run.generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                # dropout on a GPU draws from CUDA's generator: a resume continues it, as the CPU's
                "cuda_rng": torch.cuda.get_rng_state(run.device) if run.device.type == "cuda" else None,
                "average": run.average.state_dict() if run.average is not None else None,
                "state": asdict(state),
            },
            tmp,
        )


def tracked_run(path: Path, run_key: str) -> dict | None:
    """The MLflow run of the checkpoint at `path` if a run with `run_key` resumes from it, else None:
    read before training starts, so that the resumed training is tracked in the same run."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # none, broken or foreign: `resume` says so
        return None
    return saved.get("tracked") if isinstance(saved, dict) and saved.get("key") == run_key else None


def resume(path: Path, run_key: str, run: Run, state: TrainState) -> int:
    """Load `path` into the run and `state` if it belongs to this run; return its epoch (0: none)."""
    if not path.exists():
        return 0
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a broken or foreign file: start over
        print(f"train: ignoring unreadable checkpoint {path} ({type(e).__name__}: {e})")
        return 0
    if not isinstance(saved, dict) or saved.get("key") != run_key:
        print(f"train: {path} was made with other params, data or training code; starting from epoch 1")
        return 0
    run.model.load_state_dict(saved["model"])
    run.optimizer.load_state_dict(saved["optimizer"])
    run.schedule.load_state_dict(saved["schedule"])
    run.generator.set_state(saved["generator"])
    torch.set_rng_state(saved["torch_rng"])
    if run.device.type == "cuda" and saved.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(saved["cuda_rng"], run.device)
    if run.average is not None:
        run.average.load_state_dict(saved["average"])
    for name, value in saved["state"].items():
        setattr(state, name, value)
    run.saved_epoch = int(state.epoch)
    print(f"train: resuming {path} after epoch {state.epoch}")
    return int(state.epoch)
