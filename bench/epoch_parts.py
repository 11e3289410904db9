"""Where one training epoch's seconds go, for models of params.yaml on the project's data: the
augmentation of an epoch's batches, the training steps (forward, backward, AdamW, in the model's
`train.precision`) and the validation pass (flip-averaged, in the model's scoring precision, as
every validated epoch runs it), each timed alone with the training loop's own functions.

    python bench/epoch_parts.py [--models resnet,cnn] [--steps 20] [--threads 2] [--json out.json]

Run in a project whose data stages have run (data/*.npz); the weights are fresh, so only the
seconds mean anything. Steps are timed over --steps batches after 3 warm-up steps and scaled to
the epoch's batch count. The process keeps freed memory as a stage's does (fer3d.allocator;
FER3D_MALLOC_TUNING=0 measures glibc's defaults). Issue 13 ("find where the minutes go") measured
resnet with it: 1.4 s of augmentation, 33.3 s of bf16 steps and 8.0 s of validation (then fp32) an
epoch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fer3d import params
from fer3d.allocator import keep_freed_memory
from fer3d.config import Paths
from fer3d.io import save_json
from fer3d.models import MODELS, build_model
from fer3d.training import features
from fer3d.training.loop import Run, seed_everything, train_step, validate
from stages.train import model_settings


def epoch_parts(name: str, steps: int) -> dict:
    p = params.load()
    cfg, options = model_settings(p, name)
    spec = MODELS[name]
    labels_name = str(params.get(p, "data.labels", str))
    feats = features.load(spec.input, Paths(), cfg.get("augment") or {}, f"models.{name}.augment", labels_name)
    seed_everything(int(cfg["seed"]))
    run = Run.start(build_model(name, num_classes=len(feats.classes), **options, **feats.context), feats, cfg)
    batch, labels = int(cfg["batch_size"]), torch.from_numpy(feats.label)
    order = torch.from_numpy(run.train_index)[torch.randperm(len(run.train_index), generator=run.generator)]
    batches = [order[i * batch : (i + 1) * batch] for i in range(run.steps_per_epoch)]

    start = time.perf_counter()
    augmented = [feats.augment(feats.batch(idx, run.device), run.generator) for idx in batches]
    augment_s = time.perf_counter() - start

    run.model.train()

    def step(i: int) -> None:
        train_step(run, augmented[i % len(augmented)], labels[batches[i % len(batches)]].to(run.device))

    for i in range(3):
        step(i)
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    steps_s = (time.perf_counter() - start) / steps * run.steps_per_epoch

    start = time.perf_counter()
    validate(run)
    validate_s = time.perf_counter() - start
    return {
        "model": name,
        "precision": run.precision,
        "batches": run.steps_per_epoch,
        "augment_s": augment_s,
        "steps_s": steps_s,
        "validate_s": validate_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="resnet", help="comma-separated names from params.yaml's models")
    ap.add_argument("--steps", type=int, default=20, help="training steps to time (after 3 warm-up steps)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the figures (seconds unrounded) here")
    args = ap.parse_args()
    if args.steps < 1:
        sys.exit(f"--steps must be >= 1, got {args.steps}")
    keep_freed_memory()
    torch.set_num_threads(args.threads)
    results = []
    print("| model | precision | batches | augment s | steps s | validation s | validation share |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        r = epoch_parts(name.strip(), args.steps)
        results.append(r)
        total = r["augment_s"] + r["steps_s"] + r["validate_s"]
        print(
            f"| {r['model']} | {r['precision']} | {r['batches']} | {r['augment_s']:.1f} | {r['steps_s']:.1f} | "
            f"{r['validate_s']:.1f} | {r['validate_s'] / total:.0%} |"
        )
    if args.json:
        save_json(Path(args.json), results)


if __name__ == "__main__":
    main()
