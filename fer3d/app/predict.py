"""`fer3d predict`: emotions of every face in people's images, from a folder of model files.

Faces are found and cut as fer3d.app.faces says; the models are a fer3d.inference.Predictor (the
same Classifiers and fusion rows the evaluate stage scored), fed `batch_size` faces at a time
across files. A face FaceMesh finds no mesh on gets the 3D models' training class prior (the rule
the evaluate stage applies), flagged `from_prior` in the JSON and `*` in the table. A face with a mesh
also gets its head pose (fer3d.face3d.pose), in the photo's frame."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..face3d.pose import POSE_NAMES, FrontalFace, head_pose
from ..inference import Predictor
from .faces import Face, FaceFinder, InputError, faces_in, faces_in_image, list_inputs

NO_MESH = "FaceMesh found no face mesh on the 48x48 crop; the 3D models answer with their training class prior"


@dataclass
class Run:
    files: list[dict]
    faces: int
    seconds: float  # processing time, models and detectors already loaded

    @property
    def seconds_per_face(self) -> float | None:
        return self.seconds / self.faces if self.faces else None


def face_predictions(predictor: Predictor, probas: dict[str, np.ndarray], i: int, has_mesh: bool) -> dict:
    """{name: {"emotion", "probability", "probabilities"[, "from_prior"]}} of face i."""
    out = {}
    classes = predictor.classes
    for name, p in probas.items():
        row = p[i]
        k = int(row.argmax())
        entry = {
            "emotion": classes[k],
            "probability": round(float(row[k]), 6),
            "probabilities": {c: round(float(v), 6) for c, v in zip(classes, row)},
        }
        classifier = predictor.classifiers.get(name)
        if not has_mesh and classifier is not None and classifier.needs_mesh:
            entry["from_prior"] = True
        out[name] = entry
    return out


@dataclass
class _Pending:
    entry: dict
    faces: list[Face]


def predict_files(
    paths: Iterable[str | Path],
    predictor: Predictor,
    crops: bool = False,
    align: bool = True,
    finder: FaceFinder | None = None,
    on_file: Callable[[dict], None] | None = None,
    batch_size: int = 64,
) -> Run:
    """Every input file → {"file", "error"} or {"file", "image_size", "faces": [...]}, in input order."""
    own_finder = finder is None and not crops
    finder = FaceFinder() if own_finder else finder
    files: list[dict] = []
    pending: list[_Pending] = []
    seconds, n_faces = 0.0, 0
    try:
        for path in list_inputs(paths):
            start = time.perf_counter()
            entry = {"file": str(path)}
            try:
                faces, image = faces_in(path, finder, crops, align)
                entry["image_size"] = [int(image.shape[1]), int(image.shape[0])]
                pending.append(_Pending(entry, faces))
            except InputError as e:
                entry.update(error=str(e), faces=[])
            files.append(entry)
            if sum(len(p.faces) for p in pending) >= batch_size:
                n_faces += _score(predictor, pending, on_file)
            seconds += time.perf_counter() - start
            if "error" in entry and on_file:
                on_file(entry)
        start = time.perf_counter()
        n_faces += _score(predictor, pending, on_file)
        seconds += time.perf_counter() - start
    finally:
        if own_finder:
            finder.close()
    return Run(files, n_faces, seconds)


def predict_image(
    image: np.ndarray,
    predictor: Predictor,
    finder: FaceFinder | None,
    name: str = "upload",
    crops: bool = False,
    align: bool = True,
) -> dict:
    """One decoded image (uint8 gray or BGR) → the per-file entry `fer3d predict` writes:
    {"file", "image_size", "faces": [...]}. InputError (naming `name`) when it has no face."""
    faces = faces_in_image(image, finder, crops, align, name)
    entry = {"file": name, "image_size": [int(image.shape[1]), int(image.shape[0])]}
    _score(predictor, [_Pending(entry, faces)], None)
    return entry


_POSE_REFERENCES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def pose_reference(predictor: Predictor) -> FrontalFace | None:
    """The frontal face head pose is measured against: from the first 3D model's file, built once
    per predictor (an SVD and a symmetrisation; predict calls this for every batch)."""
    if predictor not in _POSE_REFERENCES:
        stats = next((c.stats for c in predictor.classifiers.values() if c.needs_mesh), None)
        _POSE_REFERENCES[predictor] = FrontalFace.from_model_stats(stats) if stats is not None else None
    return _POSE_REFERENCES[predictor]


def head_poses(predictor: Predictor, faces: list[Face], points, has_mesh) -> list[dict | None]:
    """{"yaw", "pitch", "roll"} degrees per face in the photo's frame (the crop's roll plus the
    angle the crop was levelled by); None where no mesh was found or no 3D model was asked."""
    reference = pose_reference(predictor) if points is not None else None
    if reference is None:
        return [None] * len(faces)
    angles = head_pose(points, reference)
    out: list[dict | None] = []
    for face, found, (yaw, pitch, roll) in zip(faces, has_mesh, angles):
        roll = (roll + face.angle + 180) % 360 - 180
        out.append(dict(zip(POSE_NAMES, (round(float(v), 2) for v in (yaw, pitch, roll)))) if found else None)
    return out


def _score(predictor: Predictor, pending: list[_Pending], on_file) -> int:
    """Score the pending files' faces in one batch, fill in their entries; empties `pending`."""
    faces = [f for p in pending for f in p.faces]
    if not faces:
        pending.clear()
        return 0
    scores = predictor.predict_proba(np.stack([f.crop for f in faces]))
    has_mesh = scores.has_mesh if scores.has_mesh is not None else np.ones(len(faces), bool)
    poses = head_poses(predictor, faces, scores.points, has_mesh)
    i = 0
    for p in pending:
        p.entry["faces"] = []
        for index, face in enumerate(p.faces):
            result = {
                "index": index,
                "box": face.box,
                "detection_score": face.score,
                "rotation_degrees": face.angle,
                "mesh_found": bool(has_mesh[i]) if predictor.needs_mesh else None,
                "head_pose": poses[i],
                "predictions": face_predictions(predictor, scores.probas, i, bool(has_mesh[i])),
            }
            if predictor.needs_mesh and not has_mesh[i]:
                result["note"] = NO_MESH
            p.entry["faces"].append(result)
            i += 1
        if on_file:
            on_file(p.entry)
    pending.clear()
    return len(faces)


def result_json(run: Run, predictor: Predictor, crops: bool, align: bool) -> dict:
    return {
        "classes": predictor.classes,
        "models": predictor.names,
        "fusions": {n: {"members": f.members, "weights": f.weights} for n, f in predictor.fusions.items()},
        "mode": "crops" if crops else "detect",
        "align_eyes": align,
        "faces": run.faces,
        "seconds_per_face": round(run.seconds_per_face, 4) if run.faces else None,
        "files": run.files,
    }


def table(files: list[dict], names: Sequence[str]) -> str:
    """A plain-text table: one row per face (or per failed file), one column per model; `*` marks
    a 3D model's training prior on a face without a mesh."""
    head = ["file", "face", "box", *names]
    rows, errors = [], []
    for entry in files:
        if entry.get("error"):
            errors.append(f"{entry['file']}  error: {entry['error'].removeprefix(entry['file'] + ': ')}")
            continue
        for face in entry["faces"]:
            cells = [entry["file"], str(face["index"]), ",".join(map(str, face["box"]))]
            for name in names:
                p = face["predictions"][name]
                cells.append(f"{p['emotion']} {p['probability']:.2f}{'*' if p.get('from_prior') else ''}")
            rows.append(cells)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(head)]

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows), *errors])
