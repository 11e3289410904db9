"""evaluate_shifts: every model (through its model file) and every fusion row of models/fusion.json
on the shifted PublicTest and PrivateTest images (fer3d.evaluation.shifts; 3D models on the points
FaceMesh found on the shifted image, stage shift_landmarks) → metrics/shifts.json.

Accuracy per shift, their mean ("shifted") and the plain accuracy beside it (from the evaluate
stage's metrics/probabilities.npz, the same rows), on PrivateTest (reported) and PublicTest (for
choosing recipes, never for reporting). Fusion weights are the ones fitted on plain PublicTest.
With shifts.backend auto the models run in onnxruntime on CPU (exported in memory and checked
against torch; 1.2-1.6x torch's speed on the image models, README "ONNX export and inference
speed"), in torch on CUDA."""

import sys
import time

import numpy as np

from fer3d import params
from fer3d.config import Paths
from fer3d.data import labels as label_set
from fer3d.device import resolve_device
from fer3d.evaluation import shifts
from fer3d.inference.base import ClassifierBase
from fer3d.inference.fusion import load_fusions
from fer3d.inference.onnx_export import BACKENDS, bulk_classifier
from fer3d.inference.threads import fix_cpu_threads
from fer3d.io import load_npz, save_json
from fer3d.training.tracking import log_scores


def main() -> None:
    p, paths = params.load(), Paths()
    suite = shifts.parse_suite(params.get(p, "shifts.suite", list), "params.yaml: shifts.suite")
    splits = shifts.parse_splits(params.get(p, "shifts.splits", list), "params.yaml: shifts.splits")
    device = resolve_device(str(params.get(p, "device")))
    threads = fix_cpu_threads(params.get(p, "train.threads", int))
    backend = params.get(p, "shifts.backend", str)
    if backend not in BACKENDS:
        raise params.ParamError(f"params.yaml: shifts.backend must be one of {', '.join(BACKENDS)}, found {backend!r}")
    names = list(params.get(p, "models", dict))
    start = time.perf_counter()
    fer, shifted = load_npz(paths.fer2013), load_npz(paths.shift_landmarks)
    check_made_for(paths, shifted, suite, splits)
    labels = label_set.load(paths, str(params.get(p, "data.labels", str)))
    # the rows the label set keeps (FER+ leaves some out), as positions in the shifted arrays
    kept = np.flatnonzero(labels.kept[shifted["rows"]])
    rows = shifted["rows"][kept]
    where = {k: fer["split"][rows] == s for k, s in splits.items()}  # split name -> rows of it
    label = labels.label[rows]
    classifiers = {n: bulk_classifier(paths.model(n), device, backend, threads) for n in names}
    fusions = load_fusions(paths.fusion)
    plain = plain_probabilities(paths, [*classifiers, *fusions], rows)
    accuracy = {n: {k: {"plain": hits(proba, label, w)} for k, w in where.items()} for n, proba in plain.items()}
    crops = fer["images"][rows]  # once, not per shift
    for i, shift in enumerate(suite):
        points, found = shifted["landmarks"][i][kept].astype(np.float32), shifted["found"][i][kept]
        probas = score(classifiers, fusions, shift(crops, rows), points, found)
        for n, proba in probas.items():
            for k, w in where.items():
                accuracy[n][k][shift.name] = hits(proba, label, w)
        first = next(iter(where))
        print(
            f"evaluate_shifts: {shift.name} ({first}): "
            + ", ".join(f"{n} {a[first][shift.name]:.2%}" for n, a in accuracy.items())
        )
    families = {**{n: c.family for n, c in classifiers.items()}, **{n: "fusion" for n in fusions}}
    summary = {n: {k: summarise(a[k], suite) for k in where} for n, a in accuracy.items()}
    save_json(
        paths.shifts,
        {
            "protocol": "shifted copies of PrivateTest (test, reported) and, if asked, PublicTest (val, for choosing)",
            "suite": [s.name for s in suite],
            "images": {k: int(w.sum()) for k, w in where.items()},
            "faces_found": {
                s.name: {k: round(float(shifted["found"][i][kept][w].mean()), 5) for k, w in where.items()}
                for i, s in enumerate(suite)
            },
            "models": {n: {"family": families[n], **summary[n]} for n in accuracy},
            "seconds": round(time.perf_counter() - start, 1),
        },
    )
    log_scores(
        "evaluate_shifts",
        str(params.get(p, "train.mlflow_experiment", str)),
        {n: tracked_scores(by_split) for n, by_split in summary.items()},
        {n: paths.model(n) for n in names},
        {"suite": ",".join(s.name for s in suite), "splits": ",".join(splits)},
        [paths.shifts],
    )


def check_made_for(paths: Paths, shifted: dict, suite: list[shifts.Shift], splits: dict[str, int]) -> None:
    """data/shift_landmarks.npz must hold the suite and splits params.yaml asks for."""
    if [str(s) for s in shifted["shifts"]] != [s.name for s in suite] or list(shifted["splits"]) != list(splits):
        raise ValueError(
            f"{paths.shift_landmarks} holds the shifts {list(shifted['shifts'])} of {list(shifted['splits'])}, "
            f"params.yaml shifts.suite {[s.name for s in suite]} of shifts.splits {list(splits)}; "
            "run `dvc repro shift_landmarks`"
        )


def score(
    classifiers: dict[str, ClassifierBase], fusions: dict, crops: np.ndarray, points: np.ndarray, found: np.ndarray
) -> dict[str, np.ndarray]:
    """Every model's and fusion row's probabilities of one shifted set of faces."""
    probas = {n: c.predict_proba(crops=crops, points=points, has_mesh=found) for n, c in classifiers.items()}
    return {**probas, **{n: f.combine(probas, found) for n, f in fusions.items()}}


def plain_probabilities(paths: Paths, names: list[str], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Each model's and fusion row's probabilities of the unshifted `rows`, as the evaluate stage
    scored them (metrics/probabilities.npz)."""
    stored = load_npz(paths.probabilities)
    absent = [n for n in names if n not in stored]
    position = np.searchsorted(stored["rows"], rows)
    position = np.minimum(position, len(stored["rows"]) - 1)
    if absent or not np.array_equal(stored["rows"][position], rows):
        raise ValueError(
            f"{paths.probabilities} does not hold the models {absent or names} on the scored rows; "
            "run `dvc repro evaluate`"
        )
    return {n: stored[n][position] for n in names}


def hits(proba: np.ndarray, label: np.ndarray, where: np.ndarray) -> float:
    """Accuracy of the rows `where`."""
    return round(float((proba[where].argmax(1) == label[where]).mean()), 5)


def tracked_scores(by_split: dict[str, dict[str, float]]) -> dict[str, float]:
    """One model's numbers as MLflow metrics: <split>_shifted_acc, <split>_shift_drop and per shift
    <split>_acc/<shift> (e.g. test_acc/blur:1)."""
    out = {}
    for split, acc in by_split.items():
        out.update({f"{split}_shifted_acc": acc["shifted"], f"{split}_shift_drop": acc["drop"]})
        out.update({f"{split}_acc/{name}": v for name, v in acc.items() if name not in ("plain", "shifted", "drop")})
    return out


def summarise(accuracy: dict[str, float], suite: list[shifts.Shift]) -> dict[str, float]:
    """Per-shift accuracies + their mean ("shifted") and how far it falls below plain ("drop")."""
    mean = shifts.shifted_accuracy(accuracy, suite)
    return {**accuracy, "shifted": round(mean, 5), "drop": round(accuracy["plain"] - mean, 5)}


if __name__ == "__main__":
    try:
        main()
    except (params.ParamError, ValueError, FileNotFoundError) as e:
        sys.exit(f"evaluate_shifts: {e}")
