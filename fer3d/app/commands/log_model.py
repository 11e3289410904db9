"""`fer3d log-model`: the predictor as an MLflow pyfunc model."""

from __future__ import annotations

import shlex

from .options import model_names


def add_log_model(subparsers) -> None:
    p = subparsers.add_parser(
        "log-model",
        help="log the whole predictor as an MLflow pyfunc model (for `mlflow models serve` and the registry)",
        description="Log the model files of --models-dir, their fusion rows, face detection and FaceMesh as one "
        "MLflow pyfunc model (with the fer3d code, pinned requirements, a signature and an input example) in a new "
        "run, optionally registered. `mlflow models serve -m <printed URI> --env-manager local` then answers "
        "POST /invocations with what `fer3d predict` writes per file. Store: --tracking-uri, else as for training "
        "(MLFLOW_TRACKING_URI, DAGSHUB_REPO, else the project's sqlite:///mlflow.db).",
    )
    p.add_argument("--models-dir", default="models", help="folder of <name>.pt files (default: models)")
    p.add_argument(
        "--models",
        default=None,
        help="comma-separated model and/or fusion names; default: every <name>.pt in --models-dir and every "
        "fusion row of its fusion.json",
    )
    p.add_argument("--registered-model-name", default=None, help="also register it under this name")
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: as for training)")
    p.add_argument("--experiment", default="fer3d", help="MLflow experiment (default: fer3d)")
    p.add_argument("--artifact-path", default="fer3d", help="the model's name in the run (default: fer3d)")
    p.set_defaults(func=cmd_log_model)


def cmd_log_model(args) -> int:
    from mlflow.exceptions import MlflowException

    from fer3d.app.pyfunc import log_predictor
    from fer3d.training.tracking import redact

    names = model_names(args.models)
    try:
        logged = log_predictor(
            args.models_dir, names, args.registered_model_name, args.artifact_path, args.tracking_uri, args.experiment
        )
    except MlflowException as e:  # server down, auth, a name the registry refuses: one line, no traceback
        raise ValueError(f"MLflow refused the model: {redact(' '.join(str(e).split()))[:500]}") from None
    print(f"tracking: {redact(logged.tracking_uri)}")
    print(f"model: {logged.model_uri}")
    if logged.registered_uri:
        print(f"registered: {logged.registered_uri}")
    uri = shlex.quote(redact(logged.tracking_uri))
    model = logged.registered_uri or logged.model_uri
    print(f"serve: MLFLOW_TRACKING_URI={uri} mlflow models serve -m {model} --env-manager local --port 5001")
    return 0
