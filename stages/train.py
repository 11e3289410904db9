"""train_2d / train_3d: `python -m stages.train <model>` → models/<model>.pt (self-contained: see
fer3d.models.model_file), metrics/train/<model>.json and the per-epoch curve
metrics/train/<model>_curve.csv (for `dvc plots`)."""

import csv
import hashlib
import io
import sys
from pathlib import Path

import torch

from fer3d import params, show_progress
from fer3d.config import TRAIN, VAL, Paths
from fer3d.device import resolve_device, resolve_precision
from fer3d.face3d.landmarks import Attempt
from fer3d.io import save_json, save_text
from fer3d.models import MODELS, build_model, count_parameters
from fer3d.models.model_file import save_model
from fer3d.training import checkpoint, features
from fer3d.training.loop import TrainingInterrupted, TrainResult, fit, seed_everything
from fer3d.training.tracking import MODEL_MD5_TAG, Tracker, file_md5, tracking_enabled

NOT_MODEL_OPTIONS = {"name", "family", "input", "augment"}


def main(name: str) -> None:
    p, paths = params.load(), Paths()
    cfg, options = model_settings(p, name)
    spec = MODELS[name]
    device = resolve_device(str(cfg["device"]))  # a bad device fails here, before any data is read
    # what auto means on this machine, so that the checkpoint, the model file and MLflow record it
    cfg["precision"] = resolve_precision(str(cfg.get("precision", "fp32")), device)
    if int(cfg["threads"]):  # before any torch work: the thread count is part of the result's bits
        torch.set_num_threads(int(cfg["threads"]))
    labels = str(params.get(p, "data.labels", str))
    feats = features.load(spec.input, paths, cfg.get("augment") or {}, f"models.{name}.augment", labels)
    seed_everything(int(cfg["seed"]))  # before building: the initial weights come from the seed too
    model = build_model(name, num_classes=len(feats.classes), **options, **feats.context)
    print(
        f"train: {name} ({spec.family}, input {spec.input}, {count_parameters(model):,} parameters) on "
        f"{len(feats.indices(TRAIN)):,} training rows, validating on {len(feats.indices(VAL)):,}"
    )
    own_epochs = (p["models"][name] or {}).get("epochs")
    if own_epochs is not None and own_epochs > cfg["epochs"]:  # both checked by model_config
        print(f"train: {name} trains {cfg['epochs']} epochs, the top-level epochs, not its own {own_epochs}")
    fingerprint = checkpoint.fingerprint(feats.rows, feats.label, feats.split, feats.usable, feats.soft)
    if options.get("pretrained"):  # the weights a fine-tune starts from: another file at that path is another run
        fingerprint += hashlib.blake2b(Path(options["pretrained"]).read_bytes(), digest_size=8).hexdigest()
    trained = False  # a Ctrl-C after training (writing, logging, the tracker's exit) says what it left
    training_error: BaseException | None = None
    ckpt = paths.checkpoint(name)
    # a resumed training logs on in the MLflow run of its first epochs
    previous_run = (
        checkpoint.tracked_run(ckpt, checkpoint.key(cfg, fingerprint, device.type)) if tracking_enabled() else None
    )
    try:
        with Tracker(
            experiment=str(cfg.get("mlflow_experiment", "fer3d")),
            run_name=name,
            tags={"family": spec.family, "input": spec.input},
            continues=previous_run,
        ) as tracker:
            tracker.log_params(
                {
                    **cfg,
                    "parameters": count_parameters(model),
                    "pretrained_from": getattr(model, "pretrained_from", None),
                    # what the model learned from: a data.limit smoke run and a full run differ here
                    "data": {
                        "labels": labels,
                        "train_rows": len(feats.indices(TRAIN)),
                        "val_rows": len(feats.indices(VAL)),
                    },
                    "fingerprint": fingerprint,  # of the rows, labels and training code (what a resume must match)
                }
            )
            try:
                result = fit(
                    model, feats, cfg, ckpt, tracker=tracker, progress=show_progress(), fingerprint=fingerprint
                )
            except BaseException as e:
                training_error = e
                raise
            trained = True
            model_path = save_trained(paths, p, name, model, feats, cfg, options, result)
            tracker.log_metrics(
                {
                    "best_val_acc": result.best_val_acc,
                    "best_epoch": result.best_epoch,
                    "resumed_from_epoch": result.resumed_from_epoch,  # > 0: resumed from the checkpoint of that epoch
                }
            )
            tracker.set_tags({MODEL_MD5_TAG: file_md5(model_path)})  # evaluate adds its test scores here
            tracker.log_artifact(model_path)
            tracker.log_model(model, name="model")
            summary = training_summary(name, model, result, cfg, model_path)
            summary["tracking"] = tracker.status.split(":")[0]  # ok | disabled | failed (details are in the log)
        save_json(paths.train_metrics / f"{name}.json", summary)
        save_text(paths.train_metrics / f"{name}_curve.csv", curve_csv(result.history))
    except KeyboardInterrupt as e:
        raise interruption(e, trained, training_error, ckpt) from None
    ckpt.unlink(missing_ok=True)  # done: the next run starts fresh
    print(
        f"train: {name} best validation accuracy {result.best_val_acc:.4f} at epoch {result.best_epoch} "
        f"({result.seconds / 60:.1f} min); tracking {tracker.status}"
    )


WRITING = (
    "after training, while writing its outputs (some may be written, not all); the checkpoint of its last "
    "epoch is kept: `dvc repro` writes them again without training"
)


def interruption(e: KeyboardInterrupt, trained: bool, training_error: BaseException | None, checkpoint: Path):
    """What a Ctrl-C in the stage reports. A second Ctrl-C while the tracker ends the run of a training
    that was interrupted or failed: that first outcome (its message says what was kept). After training:
    what writing may have left. Otherwise whether a checkpoint is there to resume from."""
    if training_error is not None and training_error is not e:
        return training_error
    if trained:
        return KeyboardInterrupt(WRITING)
    if checkpoint.exists():
        return KeyboardInterrupt(f"with the checkpoint {checkpoint} on disk: `dvc repro` resumes from it")
    return e


def save_trained(paths: Paths, p: dict, name: str, model, feats, cfg: dict, options: dict, result: TrainResult):
    """The self-contained model file: weights plus everything its Classifier needs."""
    spec = MODELS[name]
    return save_model(
        paths.model(name),
        model,
        name=name,
        classes=list(feats.classes),
        options=options,
        context={k: v for k, v in feats.context.items() if k in spec.context()},
        input_stats=feats.stats,
        tta_flip=bool(cfg.get("tta_flip", True)),
        prior=feats.class_prior(),
        landmarks=landmark_settings(p) if spec.family == "3d" else None,
        # the recipe without the thread count and the validation schedule (metrics/train/<name>.json
        # records them): a file made with N threads is byte for byte the one the code before
        # train.threads made with N
        training={"best_epoch": result.best_epoch, "val_acc": result.best_val_acc, "config": recipe(cfg)},
        tta_shift=int(cfg.get("tta_shift", 0)),
    )


# train.* keys added after the 2026-11-24 run, left out of a model file while off, so that a file
# made without them is byte for byte the one the code before them made
OFF_WHEN_ZERO = ("ema", "mixup", "cutmix", "tta_shift", "fused_optimizer")


# how the run was carried out, not what was trained: metrics/train/<name>.json records them. The
# validation schedule only decides which epochs could be chosen; the file keeps the chosen one.
NOT_IN_MODEL_FILE = ("threads", "validate_last", "validate_every")


def recipe(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k not in NOT_IN_MODEL_FILE and not (k in OFF_WHEN_ZERO and not v)}


def model_settings(p: dict, name: str) -> tuple[dict, dict]:
    """(the model's training config, its model options) from params.yaml, checked."""
    if name not in MODELS:
        raise params.ParamError(f"unknown model {name!r}; registered models: {sorted(MODELS)}")
    cfg = params.model_config(p, name, options=MODELS[name].options())
    spec = MODELS[name]
    if cfg["family"] != spec.family:
        raise params.ParamError(
            f"params.yaml: models.{name}.family is {cfg['family']!r}, but {name} is a {spec.family} model"
        )
    if cfg.get("tta_shift") and spec.input != "image":
        raise params.ParamError(
            f"params.yaml: tta_shift for models.{name} must be 0: shifted views are of images, and {name} "
            f"takes {spec.input}, found {cfg['tta_shift']!r}"
        )
    if cfg.get("cutmix") and spec.input != "image":
        raise params.ParamError(
            f"params.yaml: cutmix for models.{name} must be 0: CutMix pastes image boxes, and {name} "
            f"takes {spec.input}, found {cfg['cutmix']!r} (mixup works on any input)"
        )
    # every training knob, also one the train section leaves to its default and a model sets
    training_keys = {*params.GLOBAL_TRAINING_KEYS, *params.TRAIN_KEYS}
    return cfg, {k: v for k, v in cfg.items() if k not in training_keys | NOT_MODEL_OPTIONS}


def landmark_settings(p: dict) -> dict:
    """The FaceMesh settings the landmarks stage used: a 3D model's file keeps them, so that faces
    it scores later get their points found the same way."""
    attempts = Attempt.list_from_param(params.get(p, "landmarks.attempts", list))
    confidence = float(params.get(p, "landmarks.min_detection_confidence", (int, float)))
    settings = {"attempts": [vars(a) for a in attempts], "min_detection_confidence": confidence}
    if params.get(p, "landmarks.mirror_average", bool):
        # only when on, so files trained on plain readings keep the bytes they had
        settings["mirror_average"] = True
    return settings


def training_summary(name: str, model, result: TrainResult, cfg: dict, model_path) -> dict:
    spec = MODELS[name]
    return {
        "model": name,
        "family": spec.family,
        "input": spec.input,
        "parameters": count_parameters(model),
        "pretrained_from": getattr(model, "pretrained_from", None),
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "epochs_validated": sum(r["val_acc"] is not None for r in result.history),
        "validate_last": cfg.get("validate_last", 1.0),
        "validate_every": cfg.get("validate_every", 1),
        "stopped_early": result.stopped_early,
        "val_acc": round(result.best_val_acc, 5),
        "train_minutes": round(result.seconds / 60, 2),
        "seconds_per_epoch": round(result.seconds / max(1, len(result.history)), 1),
        "train_samples_per_second": result.history[-1]["train_samples_per_second"] if result.history else None,
        "device": str(resolve_device(str(cfg["device"]))),
        "threads": torch.get_num_threads(),
        "precision": cfg["precision"],
        "model_mb": round(model_path.stat().st_size / 1e6, 2),
    }


def curve_csv(history: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    return out.getvalue()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: python -m stages.train <model>  (one of {sorted(MODELS)})")
    try:
        main(sys.argv[1])
    except (params.ParamError, ValueError, FileNotFoundError) as e:
        sys.exit(f"train {sys.argv[1]}: {e}")
    except TrainingInterrupted as e:
        print(f"train {sys.argv[1]}: {e}", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt as e:  # before the first epoch (reading data, building the model) or after the last
        when = str(e) or "before training began; nothing written"
        print(f"train {sys.argv[1]}: interrupted {when}", file=sys.stderr)
        sys.exit(130)
