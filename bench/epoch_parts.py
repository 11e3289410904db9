"""Where one training epoch's seconds go, for models of params.yaml on the project's data: the
augmentation of an epoch's batches, the training steps (forward, backward, AdamW, in the model's
`train.precision`) and the validation pass (flip-averaged, in the model's scoring precision, as
every validated epoch runs it), each timed alone with the training loop's own functions, and what
they make of the model's whole schedule here: its epochs' augmentation and steps plus the passes
`train.validate_last` / `validate_every` ask for (an upper bound where `patience` stops it sooner).

    python bench/epoch_parts.py [--models resnet,cnn | --models all] [--steps 20] [--seconds 20] [--threads 2]
                                [--json out.json]

`--models all` times every model of params.yaml and sums their schedules: the training minutes of
a default `dvc repro` on this machine, before committing hours to it (on a CPU without AMX the
image nets train in fp32, several times slower than the README's AMX figures).

Run in a project whose data stages have run (data/*.npz); the weights are fresh, so only the
seconds mean anything. Steps are timed over at least --steps batches and --seconds seconds, up to
the epoch's batches, after 3 warm-up steps, and scaled to the epoch's batch count: a shared VM's step
time wanders from minute to minute (2026-12-06, resnet in fp32: 20- and 60-step means 10-20% above
its real epochs' steps, a whole epoch's 224 within 1%). The process keeps freed memory as a stage's
does (fer3d.allocator; FER3D_MALLOC_TUNING=0 measures glibc's defaults). Issue 13 ("find where the minutes go") measured
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
from fer3d.device import cpu_has_amx
from fer3d.io import save_json
from fer3d.models import MODELS, build_model
from fer3d.training import features
from fer3d.training.loop import Run, seed_everything, train_step, validate, validation_due
from stages.train import model_settings


def epoch_parts(p: dict, name: str, steps: int, min_seconds: float = 0.0) -> dict:
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
    start, timed = time.perf_counter(), 0
    while timed < steps or (timed < run.steps_per_epoch and time.perf_counter() - start < min_seconds):
        step(timed)
        timed += 1
    steps_s = (time.perf_counter() - start) / timed * run.steps_per_epoch

    start = time.perf_counter()
    validate(run)
    validate_s = time.perf_counter() - start
    epochs = int(cfg["epochs"])
    validated = sum(validation_due(epoch, cfg) for epoch in range(1, epochs + 1))
    return {
        "model": name,
        "precision": run.precision,
        "batches": run.steps_per_epoch,
        "augment_s": augment_s,
        "steps_s": steps_s,
        "timed_steps": timed,
        "validate_s": validate_s,
        "epochs": epochs,
        "validated_epochs": validated,
        "schedule_minutes": (epochs * (augment_s + steps_s) + validated * validate_s) / 60,
    }


def model_names(p: dict, listed: str) -> list[str]:
    """`all`: every model of params.yaml, else the comma-separated names, each checked."""
    known = list(params.get(p, "models", dict))
    names = known if listed.strip() == "all" else [n.strip() for n in listed.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        sys.exit(f"--models: expected 'all' or names from params.yaml's models ({', '.join(known)}), got {listed!r}")
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="resnet", help="comma-separated names from params.yaml's models, or all")
    ap.add_argument("--steps", type=int, default=20, help="training steps to time at least (after 3 warm-up steps)")
    ap.add_argument(
        "--seconds", type=float, default=20.0, help="time steps for at least this long, up to an epoch's batches"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the figures (seconds unrounded) here")
    args = ap.parse_args()
    if args.steps < 1:
        sys.exit(f"--steps must be >= 1, got {args.steps}")
    if args.seconds < 0:
        sys.exit(f"--seconds must be >= 0, got {args.seconds}")
    p = params.load()
    names = model_names(p, args.models)
    keep_freed_memory()
    torch.set_num_threads(args.threads)
    results = []
    print(f"{args.threads} threads{' (CPU has AMX)' if cpu_has_amx() else ''}; seconds of one epoch, then the schedule")
    print(
        "| model | precision | batches | augment s | steps s | validation s | validation share "
        "| epochs (validated) | schedule min |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        r = epoch_parts(p, name, args.steps, args.seconds)
        results.append(r)
        total = r["augment_s"] + r["steps_s"] + r["validate_s"]
        print(
            f"| {r['model']} | {r['precision']} | {r['batches']} | {r['augment_s']:.1f} | {r['steps_s']:.1f} | "
            f"{r['validate_s']:.1f} | {r['validate_s'] / total:.0%} | {r['epochs']} ({r['validated_epochs']}) | "
            f"{r['schedule_minutes']:.1f} |"
        )
    if len(results) > 1:
        print(f"| all {len(results)} | | | | | | | | {sum(r['schedule_minutes'] for r in results):.1f} |")
    if args.json:
        save_json(Path(args.json), results)


if __name__ == "__main__":
    main()
