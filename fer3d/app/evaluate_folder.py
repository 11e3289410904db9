"""`fer3d evaluate-folder`: every model and fusion row of a model folder scored on a labelled face
folder (fer3d.data.folders), with bootstrap intervals over groups (fer3d.evaluation.crossdata).

Images go through the predict path: 48x48 images (or all, with crops=True) are crops already;
the others are searched for faces, framed like FER2013 and cut to 48x48. An image without a face
is dropped and counted; an image with several keeps its most confident face (a labelled image
shows one person). An unreadable file stops the run naming it: a broken set is not scored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..data.folders import FolderError, LabelledFolder
from ..evaluation.crossdata import DEFAULT_RESAMPLES, score_on_set
from ..inference import Predictor
from .faces import FaceFinder, InputError, as_crop, crop_face, is_crop, read_image

NO_FACE = "no face found"
SEVERAL = "several faces: kept the most confident"


@dataclass
class FolderFaces:
    crops: np.ndarray  # (M, 48, 48) uint8 of the kept images
    kept: np.ndarray  # bool (N,) over the folder's files
    dropped: dict[str, list[str]] = field(default_factory=dict)  # reason -> relative paths
    notes: dict[str, int] = field(default_factory=dict)  # e.g. several faces -> count


def folder_faces(folder: LabelledFolder, finder: FaceFinder | None, crops: bool = False, align: bool = True):
    """The 48x48 crop of every usable image of the folder."""
    out, kept, dropped, notes, unreadable = [], np.zeros(len(folder.files), bool), {}, {}, []
    for i, path in enumerate(folder.files):
        try:
            image = read_image(path)
        except InputError as e:
            unreadable.append(str(e))
            continue
        if crops or is_crop(image):
            out.append(as_crop(image))
            kept[i] = True
            continue
        detections = finder.find(image)
        if not detections:
            dropped.setdefault(NO_FACE, []).append(path.relative_to(folder.root).as_posix())
            continue
        if len(detections) > 1:
            notes[SEVERAL] = notes.get(SEVERAL, 0) + 1
        out.append(crop_face(image, max(detections, key=lambda d: d.score), align).crop)
        kept[i] = True
    if unreadable:
        raise FolderError(f"{len(unreadable)} unreadable file(s) in {folder.root}: " + "; ".join(unreadable[:5]))
    if not out:
        raise FolderError(f"{folder.root}: no face found in any of its {len(folder.files)} image(s)")
    return FolderFaces(np.stack(out), kept, dropped, notes)


def evaluate_folder(
    predictor: Predictor,
    folder: LabelledFolder,
    finder: FaceFinder | None,
    group_pattern: str | None = None,
    crops: bool = False,
    align: bool = True,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict:
    """The JSON `fer3d evaluate-folder` writes: the set, what was dropped, every model's scores."""
    groups = folder.groups(group_pattern)  # before the slow part: a bad pattern fails at once
    faces = folder_faces(folder, finder, crops, align)
    labels = [lab for lab, k in zip(folder.labels, faces.kept) if k]
    scores = predictor.predict_proba(faces.crops)
    results = {
        name: score_on_set(p, labels, predictor.classes, groups[faces.kept], resamples, seed)
        for name, p in scores.probas.items()
    }
    return {
        "set": str(folder.root),
        "classes": folder.subset(faces.kept).counts(),
        "images": len(folder.files),
        "used": int(faces.kept.sum()),
        "dropped": {reason: {"count": len(files), "examples": files[:5]} for reason, files in faces.dropped.items()},
        "notes": faces.notes,
        "mesh_found": int(scores.has_mesh.sum()) if scores.has_mesh is not None else None,
        "group_pattern": group_pattern,
        "interval": f"95% percentile bootstrap over {'groups' if group_pattern else 'images'}, {resamples} resamples",
        "model_classes": predictor.classes,
        "models": results,
    }


def table(result: dict, names: Sequence[str]) -> str:
    """One line per model: images, accuracy and macro-F1 with their 95% intervals, exclusions."""

    def cell(value: float, interval: list[float]) -> str:
        return f"{100 * value:5.1f} [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"

    rows = [["model", "images", "accuracy [95% CI]", "macro-F1 [95% CI]", "excluded"]]
    for name in names:
        r = result["models"][name]
        if r["accuracy"] is None:
            rows.append([name, "0", "-", "-", "no image of a class it knows"])
            continue
        ci = r["interval_95"]
        excluded = ", ".join(f"{c} {n}" for c, n in r["excluded"].items()) or "-"
        rows.append(
            [name, str(r["images"]), cell(r["accuracy"], ci["accuracy"]), cell(r["macro_f1"], ci["macro_f1"]), excluded]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
