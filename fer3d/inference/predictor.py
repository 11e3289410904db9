"""A set of Classifiers and Fusion rows scored together on the same faces: `Predictor.from_dir`
loads a folder of model files (and its fusion.json) that needs nothing else of the project:
<name>.pt files (backend "torch") or the <name>.onnx files of `fer3d export` (backend "onnx",
onnxruntime, which never imports torch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import DEFAULT_BATCH_SIZE, ClassifierBase, MeshSettings, as_crops, as_points
from .fusion import Fusion, load_fusions

FUSION_FILE = "fusion.json"
BACKENDS = ("torch", "onnx")


@dataclass
class Scores:
    """Probabilities (N, C) per model and fusion row, and which faces had a FaceMesh mesh."""

    probas: dict[str, np.ndarray]
    has_mesh: np.ndarray | None  # None when no 3D model was asked
    points: np.ndarray | None = None  # (N, 478, 3) crop-frame points, where meshes were looked for


class Predictor:
    def __init__(self, classifiers: dict[str, ClassifierBase], fusions: dict[str, Fusion] | None = None):
        self.classifiers = classifiers
        self.fusions = fusions or {}
        classes = {tuple(c.classes) for c in classifiers.values()}
        if len(classes) > 1:
            raise ValueError(f"the models disagree on their classes: {sorted(classes)}")
        self.classes = list(next(iter(classes))) if classes else []
        for f in self.fusions.values():
            missing = [m for m in f.members if m not in classifiers]
            if missing:
                raise ValueError(f"fusion {f.name!r} needs the models {missing}, which are not loaded")
            if len(f.prior) != len(self.classes):
                raise ValueError(f"fusion {f.name!r} is for {len(f.prior)} classes, the models {len(self.classes)}")
            families = [classifiers[m].family for m in f.members]
            if families != list(f.families):
                raise ValueError(f"fusion {f.name!r} says its members {f.members} are {f.families}: {families}")
        self._mesh = None

    @classmethod
    def from_dir(
        cls,
        models_dir: str | Path,
        names: Sequence[str] | None = None,
        device: str = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        tta_flip: bool | None = None,
        backend: str = "torch",
        precision: str = "auto",
    ) -> Predictor:
        """names None: every model file in `models_dir` and every fusion row of its fusion.json whose
        members are there. Named fusion rows bring their members along. A named model or fusion
        that is missing is an error naming the path. backend "onnx": <name>.onnx files, on the CPU,
        with the flip averaging they were exported with (`device` and `tta_flip` must stay unset) in
        fp32. precision (torch): auto scores each model as the evaluate stage did (fer3d.device), or
        fp32 / bf16 for all."""
        models_dir = Path(models_dir)
        fusion_path = models_dir / FUSION_FILE
        known, suffix = _known_models(models_dir, backend)
        available = [n for n in known if (models_dir / f"{n}{suffix}").exists()]
        fusions: dict[str, Fusion] = {}
        if names is None:
            if not available:
                hint = "run `fer3d export --format onnx`" if backend == "onnx" else "run `dvc pull` or `dvc repro`"
                raise FileNotFoundError(f"{models_dir}: no trained model files (<name>{suffix}); {hint} first")
            wanted = available
            if fusion_path.exists():
                fusions = {n: f for n, f in load_fusions(fusion_path).items() if set(f.members) <= set(available)}
        else:
            wanted = [n for n in names if n in known]
            unknown = [n for n in names if n not in known]
            if unknown:
                rows = load_fusions(fusion_path) if fusion_path.exists() else {}
                bad = [n for n in unknown if n not in rows]
                if bad:
                    where = "exported to" if backend == "onnx" else "in"
                    models = (
                        f"models {where} {models_dir}: {sorted(available)}"  # what is there, not all there could be
                    )
                    fusions = (
                        f"fusions in {fusion_path}: {sorted(rows)}"
                        if fusion_path.exists()
                        else f"no {fusion_path}, so no fusion rows"
                    )
                    raise ValueError(f"unknown model or fusion {bad}; {models}, {fusions}")
                fusions = {n: rows[n] for n in unknown}
            wanted += [m for f in fusions.values() for m in f.members if m not in wanted]
        load = _loader(backend, device, batch_size, tta_flip, precision)
        classifiers = {n: load(models_dir / f"{n}{suffix}") for n in wanted}
        if fusions:  # the file's classes against the models' (same count, other names: silently wrong)
            load_fusions(fusion_path, next(iter(classifiers.values())).classes)
        if names is None:  # 2D models first (the registry's order already is; the ONNX files' is by name)
            classifiers = dict(sorted(classifiers.items(), key=lambda item: item[1].family))
        return cls(classifiers, fusions)

    @property
    def names(self) -> list[str]:
        return list(self.classifiers) + list(self.fusions)

    @property
    def needs_mesh(self) -> bool:
        return any(c.needs_mesh for c in self.classifiers.values())

    @property
    def mesh_settings(self) -> MeshSettings | None:
        """The FaceMesh settings of the 3D models (they were trained on the same landmarks)."""
        settings = {c.name: c.mesh_settings for c in self.classifiers.values() if c.needs_mesh}
        distinct = set(settings.values())
        if len(distinct) > 1:
            raise ValueError(
                f"the 3D models were trained on landmarks found with different FaceMesh settings: {settings}"
            )
        return next(iter(settings.values())) if settings else None

    def find_meshes(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(points (N,478,3) float32, has_mesh (N,)) of 48x48 crops, found as the landmarks stage finds
        them and rounded as it stores them (float16), so a 3D model gets the inputs it was evaluated on."""
        from ..config import NUM_POINTS
        from ..face3d.landmarks import Detector

        settings = self.mesh_settings
        if self._mesh is None:
            self._mesh = Detector(settings.min_detection_confidence)
        points = np.zeros((len(crops), NUM_POINTS, 3), np.float32)
        has_mesh = np.zeros(len(crops), bool)
        for i, crop in enumerate(crops):
            found, _ = self._mesh.crop_landmarks(np.asarray(crop, np.uint8), settings.attempts, settings.mirror_average)
            if found is not None:
                points[i], has_mesh[i] = found.astype(np.float16).astype(np.float32), True
        return points, has_mesh

    def predict_proba(
        self, crops: np.ndarray, points: np.ndarray | None = None, has_mesh: np.ndarray | None = None
    ) -> Scores:
        """Every model and fusion row on 48x48 uint8 crops (N,48,48). The 3D models take `points`
        and `has_mesh` when given (the evaluate stage passes the stored landmarks), else FaceMesh
        finds them on the crops. Without has_mesh, an all-zero row of points is a face without a mesh."""
        crops = as_crops(crops)
        if self.needs_mesh and points is None:
            points, has_mesh = self.find_meshes(crops)
        elif self.needs_mesh:
            points, has_mesh = as_points(points, has_mesh)
            if len(points) != len(crops):
                raise ValueError(f"points are for {len(points)} faces, crops for {len(crops)}")
        probas = {
            name: c.predict_proba(crops=crops, points=points, has_mesh=has_mesh) for name, c in self.classifiers.items()
        }
        mesh_mask = has_mesh if has_mesh is not None else np.zeros(len(crops), bool)
        for name, f in self.fusions.items():
            probas[name] = f.combine(probas, mesh_mask)
        return Scores(probas, has_mesh, points)

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _known_models(models_dir: Path, backend: str) -> tuple[list[str], str]:
    """The model names a backend knows, in the order they are listed, and their file suffix. torch:
    the registry; onnx: the .onnx files in the folder (without torch there is no registry to ask),
    2D before 3D as in the registry, by name within a family."""
    if backend == "torch":
        from ..models.registry import MODELS

        return list(MODELS), ".pt"
    if backend == "onnx":
        from .onnx_runtime import exported_models

        return exported_models(models_dir), ".onnx"
    raise ValueError(f"backend must be one of {BACKENDS}, found {backend!r}")


def _loader(backend: str, device: str, batch_size: int, tta_flip: bool | None, precision: str):
    """path -> classifier of the backend."""
    if backend == "onnx":
        from .onnx_runtime import OnnxClassifier

        if str(device) != "cpu" or tta_flip is not None or precision == "bf16":
            raise ValueError(
                f"the onnx backend runs on the CPU in fp32 with the flip averaging it was exported with; "
                f"found device={device!r}, tta_flip={tta_flip!r}, precision={precision!r}"
            )
        return lambda path: OnnxClassifier.from_file(path, batch_size=batch_size)
    from .classifier import Classifier

    return lambda path: Classifier.from_file(path, device, batch_size, tta_flip, precision)
