"""The whole predictor (every model file, the fusion rows, face detection, FaceMesh, head pose) as
one MLflow pyfunc model, so that `mlflow models serve` answers what `fer3d predict` answers and the
model can be registered in a model registry.

Input: a pandas DataFrame, one row per image file:
  image  (string, required)  the file's bytes, base64-encoded (a "data:image/...;base64," prefix
                             and line breaks are allowed)
  name   (string, optional)  how the row is named in its entry and errors (default "row <i>")
  crops  (boolean, optional) the image is a face crop already: no detection (48x48 images always are)
  align  (boolean, optional) level the eyes before cropping (default true)
Output: a list with one JSON-serialisable dict per row, in row order: the per-file entry `fer3d
predict` writes ({"file", "image_size", "faces": [{box, detection_score, rotation_degrees,
mesh_found, head_pose, predictions: {model or fusion row: {emotion, probability, probabilities}}}]}),
or {"file", "error", "faces": []} for a row that is not an image or has no face: one bad row never
fails the batch. `mlflow models serve` returns it as {"predictions": [entry, ...]}.

The model carries the model files and fusion.json as artifacts and the fer3d package as code, so
serving needs the inference requirements (INFERENCE_PACKAGES), not the project."""

from __future__ import annotations

import base64
import binascii
import os
import re
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import mlflow.pyfunc
import pandas as pd

MODELS_ARTIFACT = "models"
# What loading the models and predicting on a photo imports (measured: sys.modules after a
# prediction), pinned as in requirements.txt. mediapipe's other declared dependencies (jax, jaxlib,
# sounddevice, sentencepiece, the non-headless opencv) are never imported; see requirement_pins.
INFERENCE_PACKAGES = (
    "torch",
    "numpy",
    "opencv-contrib-python-headless",
    "mediapipe",
    "protobuf",
    "absl-py",
    "attrs",
    "flatbuffers",
    "matplotlib",
    "pillow",
    "tqdm",
    "pandas",
    "cloudpickle",
)
_DATA_URL = re.compile(r"^data:[^,]*;base64,", re.IGNORECASE)


class InputRowError(ValueError):
    """One input row cannot be used; its entry says why, the other rows are still scored."""


def decode_base64(value, name: str) -> bytes:
    """The bytes of a base64 text; InputRowError naming the row otherwise."""
    if value is None or (isinstance(value, float) and value != value):  # absent, or NaN in a partial column
        raise InputRowError(f"{name}: 'image' is missing; expected a base64-encoded image file")
    if not isinstance(value, str):
        raise InputRowError(f"{name}: 'image' must be a base64-encoded image file, found {type(value).__name__}")
    if not value.strip():
        raise InputRowError(f"{name}: 'image' is empty; expected a base64-encoded image file")
    text = "".join(_DATA_URL.sub("", value.strip()).split())
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InputRowError(f"{name}: 'image' is not valid base64 ({e}; {len(text)} characters)") from None


def _flag(row, key: str, default: bool) -> bool:
    value = row.get(key)
    if value is None or (isinstance(value, float) and value != value):  # absent, or NaN in a partial column
        return default
    return bool(value)


def _name(row, i: int) -> str:
    value = row.get("name")
    return str(value) if isinstance(value, str) and value else f"row {i}"


class FacePredictorModel(mlflow.pyfunc.PythonModel):
    """fer3d.inference.Predictor + FaceFinder behind MLflow's pyfunc interface (see the module
    docstring for the input and output). Requests are served one at a time: the MediaPipe graphs
    are not thread-safe and the scoring server runs each request in a thread."""

    def __init__(self, names: list[str] | None = None):
        self.names = names
        self._reset()

    def _reset(self) -> None:
        self._predictor = self._finder = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:  # only the configuration is pickled, never loaded models
        return {"names": self.names}

    def __setstate__(self, state: dict) -> None:
        self.names = state["names"]
        self._reset()

    def load_context(self, context) -> None:
        import fer3d
        from fer3d.inference import Predictor

        device = (context.model_config or {}).get("device", "cpu")
        self._predictor = Predictor.from_dir(context.artifacts[MODELS_ARTIFACT], self.names, device=device)
        print(
            f"fer3d pyfunc: {', '.join(self._predictor.names)} on {device}; code from {Path(fer3d.__file__).parent}",
            file=sys.stderr,
            flush=True,
        )

    def _finder_for(self, image, crops: bool):
        """MediaPipe face detection, built on the first image that needs it (crops never do)."""
        from fer3d.app.faces import FaceFinder, is_crop

        if crops or is_crop(image):
            return None
        if self._finder is None:
            self._finder = FaceFinder()
        return self._finder

    def predict_row(self, row, i: int) -> dict:
        from fer3d.app.faces import InputError, check_image_size, decode_image
        from fer3d.app.predict import predict_image

        name = _name(row, i)
        crops, align = _flag(row, "crops", False), _flag(row, "align", True)
        try:
            data = decode_base64(row.get("image"), name)
            check_image_size(data, name)  # a network caller: no unchecked decode of a huge image
            image = decode_image(data, name)
            return predict_image(image, self._predictor, self._finder_for(image, crops), name, crops, align)
        except InputRowError as e:
            return {"file": name, "error": str(e), "faces": []}
        except InputError as e:
            return {"file": name, "error": e.telling("a 'crops' column of true"), "faces": []}

    # The pd.DataFrame hint tells MLflow to take the schema from the logged signature (it warns without one)
    def predict(self, context, model_input: pd.DataFrame, params=None) -> list[dict]:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if "image" not in frame.columns:
            raise ValueError(f"the input needs an 'image' column (base64 image files), found {list(frame.columns)}")
        with self._lock:
            return [self.predict_row(row, i) for i, row in enumerate(frame.to_dict("records"))]


# ------------------------------------------------------------------------------ logging


@dataclass
class LoggedPredictor:
    run_id: str
    model_uri: str  # runs:/<run>/<artifact_path>
    registered_uri: str | None = None  # models:/<name>/<version>
    tracking_uri: str = ""


def signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema(
        [
            ColSpec("string", "image"),
            ColSpec("string", "name", required=False),
            ColSpec("boolean", "crops", required=False),
            ColSpec("boolean", "align", required=False),
        ]
    )
    return ModelSignature(inputs=inputs)


def example_input():
    """A request with one synthetic 48x48 crop (no FER2013 pixels in a model registry)."""
    import cv2
    import numpy as np

    from fer3d.config import CROP_SIDE

    ramp = np.tile(np.linspace(40, 215, CROP_SIDE, dtype=np.uint8), (CROP_SIDE, 1))
    png = cv2.imencode(".png", ramp)[1].tobytes()
    return pd.DataFrame([{"image": base64.b64encode(png).decode(), "name": "example.png", "crops": True}])


def requirement_pins(project: Path | None = None) -> list[str]:
    """INFERENCE_PACKAGES pinned as requirements*.txt pin them (the installed version where they do
    not). mediapipe is pinned but, unlike `make install`, a fresh environment (`--env-manager
    virtualenv`/`uv`) installs it with its declared dependencies: pip cannot skip them per package."""
    from importlib import metadata

    project = project or Path(__file__).resolve().parents[2]
    pins: dict[str, str] = {}
    for path in sorted(project.glob("requirements*.txt")):
        for line in path.read_text().splitlines():
            spec = line.split("#")[0].strip()
            if "==" in spec:
                name, version = spec.split("==", 1)
                pins[re.sub(r"\[.*\]", "", name).strip().lower()] = version.strip()
    out = []
    for dist in INFERENCE_PACKAGES:
        version = pins.get(dist) or metadata.version(dist).split("+")[0]
        out.append(f"{dist}=={version}")
    return out


def stage_model_files(predictor, models_dir: Path, target: Path) -> Path:
    """Copies of the model files the predictor loaded (and fusion.json when it has fusion rows)."""
    from fer3d.inference.predictor import FUSION_FILE

    target.mkdir(parents=True)
    files = [f"{n}.pt" for n in predictor.classifiers] + ([FUSION_FILE] if predictor.fusions else [])
    for file in files:
        shutil.copy2(models_dir / file, target / file)
    return target


def stage_code(target: Path) -> Path:
    """A copy of the fer3d package without caches: the served model imports it from there."""
    import fer3d

    source = Path(fer3d.__file__).resolve().parent
    return Path(shutil.copytree(source, target / "fer3d", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")))


def log_predictor(
    models_dir: str | Path,
    names: list[str] | None = None,
    registered_model_name: str | None = None,
    artifact_path: str = "fer3d",
    tracking_uri: str | None = None,
    experiment: str = "fer3d",
) -> LoggedPredictor:
    """Log the predictor of `models_dir` (`names` as for `fer3d predict --models`; None: every model
    file and fusion row there) as a pyfunc model in a new run, optionally registered. The tracking
    store is chosen as for training (fer3d.training.tracking.resolve_tracking_uri) unless given."""
    from fer3d.inference import Predictor
    from fer3d.training.tracking import HTTP_DEFAULTS, resolve_tracking_uri

    models_dir = Path(models_dir)
    predictor = Predictor.from_dir(models_dir, names)  # refuses missing files and unknown names up front
    uri = tracking_uri or resolve_tracking_uri()
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    with tempfile.TemporaryDirectory(prefix="fer3d-pyfunc-") as tmp:
        kwargs = dict(
            python_model=FacePredictorModel(names),
            artifacts={MODELS_ARTIFACT: str(stage_model_files(predictor, models_dir, Path(tmp) / MODELS_ARTIFACT))},
            code_paths=[str(stage_code(Path(tmp) / "code"))],
            pip_requirements=requirement_pins(),
            signature=signature(),
            input_example=example_input(),
            metadata={"fer3d_models": predictor.names, "classes": predictor.classes},
        )
        return _log(uri, experiment, artifact_path, kwargs, registered_model_name)


def _experiment_id(uri: str, name: str) -> str:
    """The experiment's id, created if need be; in the local store with its artifacts in the
    workspace's mlartifacts/, as fer3d.training.tracking.Tracker creates it."""
    import mlflow

    from fer3d.config import workspace_root
    from fer3d.training.tracking import _sqlite_store_lock, local_tracking_uri

    with _sqlite_store_lock(uri):  # the first use of a store creates and migrates its tables
        client = mlflow.MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = (workspace_root() / "mlartifacts").as_uri() if uri == local_tracking_uri() else None
    return client.create_experiment(name, artifact_location=location)


def _log(uri: str, experiment: str, artifact_path: str, kwargs: dict, registered_name: str | None) -> LoggedPredictor:
    """One run holding the model, then the registry entry. A server without MLflow 3's logged-model
    API (MLflow 2.x, e.g. DagsHub's) refuses log_model: the saved model folder is then logged as run
    artifacts, which runs:/ URIs, load_model and register_model read alike."""
    import mlflow

    from fer3d.training.tracking import _fluent_target, redact

    experiment_id = _experiment_id(uri, experiment)
    with _fluent_target(uri, experiment_id):
        with mlflow.start_run(experiment_id=experiment_id, run_name="fer3d-predictor") as run:
            run_id = run.info.run_id
            source = f"runs:/{run_id}/{artifact_path}"
            try:
                source = mlflow.pyfunc.log_model(name=artifact_path, **kwargs).model_uri  # models:/<model id>
            except mlflow.exceptions.MlflowException as e:
                if "logged-models" not in str(e) and "404" not in str(e):
                    raise
                print(f"log-model: {redact(uri)} has no logged-model API; logging the model as run artifacts")
                with tempfile.TemporaryDirectory(prefix="fer3d-pyfunc-save-") as tmp:
                    mlflow.pyfunc.save_model(os.path.join(tmp, artifact_path), **kwargs)
                    mlflow.log_artifacts(os.path.join(tmp, artifact_path), artifact_path)
        logged = LoggedPredictor(run_id, f"runs:/{run_id}/{artifact_path}", tracking_uri=uri)
        if registered_name:
            version = mlflow.register_model(source, registered_name)
            logged.registered_uri = f"models:/{registered_name}/{version.version}"
    return logged
