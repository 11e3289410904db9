"""train_2d / train_3d: `python -m stages.train <model>` → models/<model>.pt, metrics/train/<model>.json
and the per-epoch curve metrics/train/<model>_curve.csv (for `dvc plots`)."""
import csv
import io
import sys
import time

from fer3d import artifacts, features, params, show_progress
from fer3d.io import save_json, save_text
from fer3d.models import MODELS, build_model, count_parameters
from fer3d.tracking import Tracker
from fer3d.train import fit, resolve_device, seed_everything

NOT_MODEL_OPTIONS = {"name", "family", "input", "augment"}


def main(name: str) -> None:
    p = params.load()
    root = params.repo_root()
    if name not in MODELS:
        raise params.ParamError(f"unknown model {name!r}; registered models: {sorted(MODELS)}")
    cfg = params.model_config(p, name)
    spec = MODELS[name]
    if cfg["family"] != spec.family:
        raise params.ParamError(f"params.yaml: models.{name}.family is {cfg['family']!r}, but {name} is a {spec.family} model")
    training_keys = set(params.GLOBAL_TRAINING_KEYS) | set(params.get(p, "train", dict))
    options = {k: v for k, v in cfg.items() if k not in training_keys | NOT_MODEL_OPTIONS}
    augment = cfg.get("augment") or {}
    resolve_device(str(cfg["device"]))  # a bad device fails here, before any data is read

    feats = features.load(spec.input, root, augment)
    seed_everything(int(cfg["seed"]))  # before building: the initial weights come from the seed too
    model = build_model(name, **options, **feats.context)
    print(f"train: {name} ({spec.family}, input {spec.input}, {count_parameters(model):,} parameters) on "
          f"{len(feats.indices(0)):,} training rows, validating on {len(feats.indices(1)):,}")
    run_params = {**cfg, "parameters": count_parameters(model),
                  "pretrained_from": getattr(model, "pretrained_from", None)}
    with Tracker(experiment=str(cfg.get("mlflow_experiment", "fer3d")), run_name=name,
                 tags={"family": spec.family, "input": spec.input}) as tracker:
        tracker.log_params(run_params)
        result = fit(model, feats, cfg, root / "models" / "checkpoints" / f"{name}.ckpt", tracker=tracker,
                     progress=show_progress())
        model_path = artifacts.save_model(
            root / "models" / f"{name}.pt", model, name, options,
            {k: v for k, v in feats.context.items() if k in spec.context()}, feats.stats,
            {"best_epoch": result.best_epoch, "val_acc": result.best_val_acc, "config": cfg})
        summary = {
            "model": name, "family": spec.family, "input": spec.input, "parameters": count_parameters(model),
            "pretrained_from": getattr(model, "pretrained_from", None),
            "best_epoch": result.best_epoch, "epochs_run": len(result.history), "stopped_early": result.stopped_early,
            "val_acc": round(result.best_val_acc, 5), "train_minutes": round(result.seconds / 60, 2),
            "seconds_per_epoch": round(result.seconds / max(1, len(result.history)), 1),
            "train_samples_per_second": result.history[-1]["train_samples_per_second"] if result.history else None,
            "device": str(resolve_device(str(cfg["device"]))), "model_mb": round(model_path.stat().st_size / 1e6, 2)}
        tracker.log_metrics({"best_val_acc": result.best_val_acc, "best_epoch": result.best_epoch})
        tracker.log_artifact(model_path)
        tracker.log_model(model, name="model")
        summary["tracking"] = tracker.status.split(":")[0]  # ok | disabled | failed (details are in the log)
    save_json(root / "metrics" / "train" / f"{name}.json", summary)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(result.history[0]))
    writer.writeheader()
    writer.writerows(result.history)
    save_text(root / "metrics" / "train" / f"{name}_curve.csv", out.getvalue())
    checkpoint = root / "models" / "checkpoints" / f"{name}.ckpt"
    checkpoint.unlink(missing_ok=True)  # done: the next run starts fresh
    print(f"train: {name} best validation accuracy {result.best_val_acc:.4f} at epoch {result.best_epoch} "
          f"({result.seconds / 60:.1f} min); tracking {tracker.status}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: python -m stages.train <model>  (one of {sorted(MODELS)})")
    started = time.perf_counter()
    try:
        main(sys.argv[1])
    except (params.ParamError, ValueError, FileNotFoundError) as e:
        sys.exit(f"train {sys.argv[1]}: {e}")
