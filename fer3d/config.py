"""Constants and project paths, defined once. `dvc.yaml` names the same paths for DVC; a test
checks that every path it declares for a stage is one of these (tests/unit/test_dvc_yaml.py)."""

from __future__ import annotations

import os
from pathlib import Path

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)

# FER2013's `Usage` column → the role each split plays in the protocol, and its index in `split`
SPLITS = ("train", "val", "test")
TRAIN, VAL, TEST = 0, 1, 2
USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SPLIT_NAMES = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}

CROP_SIDE = 48  # FER2013 faces are 48x48 gray crops
# the largest test-time shift of a 48-px face (`tta_shift`): beyond it a view loses a sixth of the face
MAX_TTA_SHIFT = 8
NUM_POINTS = 478  # MediaPipe FaceMesh with refine_landmarks (468 mesh points + 10 iris points)
DAGSHUB_HOST = "https://dagshub.com"


def class_names(stored: dict) -> tuple[str, ...]:
    """The class names of data/fer2013.npz's labels: a folder source (data.source folder:PATH)
    stores its own, FER2013's are EMOTIONS."""
    return tuple(str(c) for c in stored["classes"]) if "classes" in stored else EMOTIONS


def repo_root() -> Path:
    """The project root: FER3D_ROOT if set, else the working directory when it holds dvc.yaml (DVC
    runs stages there, and a copy of the project must use its own files), else this package's parent."""
    if os.environ.get("FER3D_ROOT"):
        return Path(os.environ["FER3D_ROOT"])
    if (Path.cwd() / "dvc.yaml").exists():
        return Path.cwd()
    return Path(__file__).resolve().parent.parent


def workspace_root(root: str | os.PathLike | None = None) -> Path:
    """The user's project folder. DVC runs queued experiments in a temporary copy under
    <workspace>/.dvc/tmp/exps/; paths outside the repository (data.shared_dir, the local MLflow
    store) must resolve from the workspace, or they point into a copy that is deleted after the run."""
    path = Path(root if root is not None else repo_root()).resolve()
    parts = path.parts
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return path


def outside_path(value: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """A params path that may lie outside the repository (data.shared_dir): absolute as given,
    relative from the workspace (see workspace_root)."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else (workspace_root(root) / path).resolve()


class Paths:
    """Every file the stages read and write, relative to the project root."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else repo_root()
        r = self.root
        self.params = r / "params.yaml"
        self.data = r / "data"
        self.raw = r / "data" / "raw"
        self.fer2013 = r / "data" / "fer2013.npz"
        self.ferplus = r / "data" / "ferplus.npz"
        self.landmarks = r / "data" / "landmarks.npz"
        self.shift_landmarks = r / "data" / "shift_landmarks.npz"  # FaceMesh on the shifted test images
        self.mesh_topology = r / "data" / "mesh_topology.npz"
        self.mesh_features = r / "data" / "mesh_features.npz"
        self.voxels = r / "data" / "voxels.npz"
        self.models = r / "models"
        self.checkpoints = r / "models" / "checkpoints"
        self.fusion = r / "models" / "fusion.json"
        self.metrics = r / "metrics"
        self.train_metrics = r / "metrics" / "train"
        self.eval_metrics = r / "metrics" / "eval"
        self.confusion = r / "metrics" / "confusion"
        self.summary = r / "metrics" / "summary.json"
        self.probabilities = r / "metrics" / "probabilities.npz"  # per image, DVC-cached (made from FER2013)
        self.comparison = r / "metrics" / "comparison.md"
        self.shifts = r / "metrics" / "shifts.json"  # accuracy under the shift suite (shifts.suite)
        self.extra_metrics = r / "metrics" / "extra"  # other labelled sets (evaluate.extra_sets)
        self.reports = r / "reports"
        self.mesh_samples = r / "reports" / "meshes"
        self.gradcam = r / "reports" / "gradcam"
        self.extra_reports = r / "reports" / "extra"

    def model(self, name: str) -> Path:
        return self.models / f"{name}.pt"

    def checkpoint(self, name: str) -> Path:
        return self.checkpoints / f"{name}.ckpt"

    def stage_metrics(self, stage: str) -> Path:
        return self.metrics / f"{stage}.json"
