"""`fer3d evaluate-folder`: every model and fusion row of a model folder scored on a labelled face
folder (fer3d.data.folders), with bootstrap intervals over groups (fer3d.evaluation.crossdata).

Images become 48x48 crops as fer3d.data.folders.folder_faces cuts them (the predict path's face
finder and framing); an unreadable file stops the run naming it: a broken set is not scored."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..data.folders import LabelledFolder, folder_faces
from ..evaluation.crossdata import DEFAULT_RESAMPLES, score_on_set
from ..inference import Predictor
from .faces import FaceFinder


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
        "interval": (
            f"95% percentile bootstrap over {'groups' if group_pattern else 'images'}, {resamples} resamples"
            if len(np.unique(groups[faces.kept])) > 1
            else "none: every scored image is in one group, so no resample differs from another"
        ),
        "model_classes": predictor.classes,
        "models": results,
    }


def table(result: dict, names: Sequence[str]) -> str:
    """One line per model: images, accuracy and macro-F1 with their 95% intervals, exclusions."""

    def cell(value: float, interval: list[float] | None) -> str:
        if interval is None:  # one group: no resample differs from another
            return f"{100 * value:5.1f} [one group: no interval]"
        return f"{100 * value:5.1f} [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"

    rows = [["model", "images", "accuracy [95% CI]", "macro-F1 [95% CI]", "excluded"]]
    for name in names:
        r = result["models"][name]
        if r["accuracy"] is None:
            rows.append([name, "0", "-", "-", "no image of a class it knows"])
            continue
        ci = r.get("interval_95") or {"accuracy": None, "macro_f1": None}
        excluded = ", ".join(f"{c} {n}" for c, n in r["excluded"].items()) or "-"
        rows.append(
            [name, str(r["images"]), cell(r["accuracy"], ci["accuracy"]), cell(r["macro_f1"], ci["macro_f1"]), excluded]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def markdown(name: str, result: dict, names: Sequence[str]) -> str:
    """The set's page of the report: what was scored and dropped, one table row per model."""
    pct = lambda v: "–" if v is None else f"{100 * v:.1f}%"
    lines = [
        f"# {name}: other labelled faces",
        "",
        f"{result['set']}: {result['used']} of {result['images']} image(s) scored "
        f"({', '.join(f'{c} {n}' for c, n in result['classes'].items())}); {result['interval']}.",
    ]
    lines += [f"- dropped {d['count']}: {reason}" for reason, d in result["dropped"].items()]
    recall_classes = [c for c in result["model_classes"] if c in result["classes"]]
    head = ["model", "images", "accuracy", "95% CI", "macro-F1", "95% CI", *recall_classes, "excluded"]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model in names:
        r = result["models"][model]
        ci = r.get("interval_95") or {"accuracy": [None, None], "macro_f1": [None, None]}
        interval = {key: f"{pct(lo)}–{pct(hi)}" for key, (lo, hi) in ci.items()}
        recalls = [pct(r["per_class_recall"].get(c)) for c in recall_classes]
        excluded = ", ".join(f"{c} {n}" for c, n in r["excluded"].items()) or "–"
        cells = [model, str(r["images"]), pct(r["accuracy"]), interval["accuracy"], pct(r["macro_f1"])]
        lines.append("| " + " | ".join([*cells, interval["macro_f1"], *recalls, excluded]) + " |")
    return "\n".join(lines) + "\n"
