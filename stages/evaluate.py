"""evaluate: every model (through its model file alone) and every fusion row on the same images →
metrics/eval/<name>.json, metrics/summary.json, metrics/confusion/<name>.csv (for `dvc plots`),
metrics/comparison.md, models/fusion.json (the fusion weights fitted on PublicTest) and
metrics/probabilities.npz (every PublicTest/PrivateTest image's probabilities, for error analysis).

The fusion is fitted here rather than in a stage of its own: its weights need every model's
PublicTest probabilities, which this stage computes anyway; a separate stage would score the eight
models twice or pass a probability cache between stages."""

import csv
import io
import sys
import time

import numpy as np

from fer3d import params
from fer3d.config import VAL, Paths
from fer3d.data import ferplus
from fer3d.data import labels as label_set
from fer3d.device import resolve_device
from fer3d.evaluation import protocol
from fer3d.inference import Classifier, Fusion
from fer3d.inference.fusion import fit_weights, save_fusions
from fer3d.inference.threads import fix_cpu_threads
from fer3d.io import load_npz, save_json, save_npz, save_text
from fer3d.training.tracking import log_scores


def main() -> None:
    p, paths = params.load(), Paths()
    device = resolve_device(str(params.get(p, "device")))
    fix_cpu_threads(params.get(p, "train.threads", int))  # the fusion weights' bits depend on it
    names = list(params.get(p, "models", dict))
    fusion_spec = params.get(p, "evaluate.fusion", dict)
    start = time.perf_counter()
    fer, lm = load_npz(paths.fer2013), load_npz(paths.landmarks)
    labels = label_set.load(paths, str(params.get(p, "data.labels", str)))
    # rows the label set leaves out (FER+ without a majority) are in no scored subset and no fit
    label, split, found = labels.label, np.where(labels.kept, fer["split"], -1), lm["found"]
    top_vote = ferplus_labels(paths) if labels.name == "fer2013" else None
    sets = protocol.subsets(fer["images"], fer["split"], found, top_vote, labels.kept)
    classifiers = {n: Classifier.from_file(paths.model(n), device) for n in names}
    check_classes(classifiers, labels)
    probas, speed = score_models(classifiers, fer["images"], lm["landmarks"], found, split >= VAL)
    results = {
        n: model_result(c.family, c.kind, probas[n], labels, split, sets, speed[n], c.precision)
        for n, c in classifiers.items()
    }
    fusions = fit_fusions(fusion_members(fusion_spec, classifiers), classifiers, probas, label, split, found)
    for name, f in fusions.items():
        probas[name] = f.combine(probas, found)
        results[name] = {
            **model_result("fusion", " + ".join(f.members), probas[name], labels, split, sets),
            "models": f.members,
            "weights": [round(w, 4) for w in f.weights],
        }
    save_fusions(paths.fusion, fusions, labels.classes)
    scored = np.flatnonzero(split >= VAL)
    per_image = {n: p[scored] for n, p in probas.items()}
    save_npz(paths.probabilities, rows=scored, has_mesh=found[scored], **per_image)
    write_metrics(paths, results, probas, labels, sets, time.perf_counter() - start)
    print(protocol.comparison_markdown(results, sets.sizes(), labels.classes, labels.name))
    fusion_params = {n: {**f, "models": ",".join(f["models"])} for n, f in fusion_rows(results).items()}
    log_scores(
        "evaluate",
        str(params.get(p, "train.mlflow_experiment", str)),
        {n: tracked_scores(r) for n, r in results.items()},
        {n: paths.model(n) for n in names},
        {"data.labels": labels.name, "fusions": fusion_params},
        [paths.summary, paths.comparison],
    )


def tracked_scores(result: dict) -> dict[str, float]:
    """One model's or fusion's numbers as MLflow metrics: val_acc, <subset>_acc, <subset>_macro_f1."""
    out = {"val_acc": result["val_acc"]}
    for subset, score in result["scores"].items():
        if score is not None:
            out.update({f"{subset}_acc": score["accuracy"], f"{subset}_macro_f1": score["macro_f1"]})
    return out


def check_classes(classifiers: dict[str, Classifier], labels: label_set.Labels) -> None:
    """A model file trained on another label set cannot be scored against this one."""
    for c in classifiers.values():
        if tuple(c.classes) != tuple(labels.classes):
            raise ValueError(
                f"{c.source}: trained on the classes {c.classes}, but data.labels={labels.name} has "
                f"{list(labels.classes)}; retrain it (dvc repro)"
            )


def ferplus_labels(paths: Paths) -> np.ndarray | None:
    votes = load_npz(paths.ferplus)
    if not votes["available"]:
        print(
            "evaluate: WARNING: no FER+ votes (see the download stage's warning); the FER+ column stays empty",
            file=sys.stderr,
        )
        return None
    return ferplus.top_vote_label(votes["votes"])


def score_models(
    classifiers: dict[str, Classifier], images: np.ndarray, points: np.ndarray, found: np.ndarray, scored: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """(N, C) probabilities of every model on the `scored` rows (zeros elsewhere), and images/s."""
    rows = np.flatnonzero(scored)
    crops, pts, has_mesh = images[rows], points[rows].astype(np.float32), found[rows]
    probas, speed = {}, {}
    for name, c in classifiers.items():
        t = time.perf_counter()
        proba = np.zeros((len(images), len(c.classes)), np.float32)
        proba[rows] = c.predict_proba(crops=crops, points=pts, has_mesh=has_mesh)
        n = int(has_mesh.sum()) if c.needs_mesh else len(rows)
        probas[name], speed[name] = proba, round(n / (time.perf_counter() - t), 1)
    return probas, speed


def model_result(
    family: str,
    input_kind: str,
    proba: np.ndarray,
    labels: label_set.Labels,
    split: np.ndarray,
    sets: protocol.Subsets,
    images_per_second: float | None = None,
    precision: str | None = None,
) -> dict:
    val = split == VAL
    out = {
        "family": family,
        "input": input_kind,
        "val_acc": round(float((proba[val].argmax(1) == labels.label[val]).mean()), 5),
    }
    if images_per_second is not None:
        out["images_per_second"] = images_per_second
    if precision is not None:  # the arithmetic the scores and the speed are of (fer3d.device)
        out["scoring_precision"] = precision
    return {**out, "scores": protocol.score_model(proba, labels.label, sets, labels.classes)}


def fusion_members(spec: dict, classifiers: dict[str, Classifier]) -> dict[str, list[str]]:
    """params evaluate.fusion (row name -> all | 2d | 3d | [model, ...]) -> row -> member models."""
    out = {}
    for row, members in spec.items():
        if members in ("all", "2d", "3d"):
            chosen = [n for n, c in classifiers.items() if members == "all" or c.family == members]
        elif isinstance(members, list) and members and all(m in classifiers for m in members):
            chosen = list(members)
        else:
            raise params.ParamError(
                f"params.yaml: evaluate.fusion.{row} must be all, 2d, 3d or a list of "
                f"configured models ({', '.join(classifiers)}), found {members!r}"
            )
        if row in classifiers:
            raise params.ParamError(f"params.yaml: evaluate.fusion.{row}: the name is a model's; pick another")
        if len(chosen) >= 2:  # one model is no fusion (e.g. a params set with a single 2D model)
            out[row] = chosen
    return out


def fit_fusions(
    rows: dict[str, list[str]],
    classifiers: dict[str, Classifier],
    probas: dict[str, np.ndarray],
    label: np.ndarray,
    split: np.ndarray,
    found: np.ndarray,
) -> dict[str, Fusion]:
    """Each row's weights, fitted on PublicTest; a 3D member votes only where a face was found."""
    val = split == VAL
    fusions = {}
    for row, members in rows.items():
        families = [classifiers[m].family for m in members]
        takes_part = [found[val] if f == "3d" else np.ones(int(val.sum()), bool) for f in families]
        weights = fit_weights([probas[m][val] for m in members], label[val], takes_part)
        # every model file keeps the same training prior: a fusion answers with it where no member votes
        prior = classifiers[members[0]].prior.tolist()
        fusions[row] = Fusion(row, members, [float(w) for w in weights], families, prior)
    return fusions


def write_metrics(
    paths: Paths,
    results: dict[str, dict],
    probas: dict[str, np.ndarray],
    labels: label_set.Labels,
    sets: protocol.Subsets,
    seconds: float,
) -> None:
    label, classes = labels.label, labels.classes
    for name, r in results.items():
        save_json(paths.eval_metrics / f"{name}.json", r)
        predicted = probas[name][sets.test].argmax(1)
        save_text(paths.confusion / f"{name}.csv", confusion_csv(label[sets.test], predicted, classes))

    def best(family):
        return max(
            (n for n in results if results[n]["family"] == family), key=lambda n: results[n]["val_acc"], default=None
        )

    save_json(
        paths.summary,
        {
            "protocol": "train=Training, select=PublicTest, report=PrivateTest",
            "labels": labels.name,
            "classes": list(classes),
            "no_mesh_rule": "3D models answer faces without a FaceMesh mesh with their training class prior",
            "subset_sizes": sets.sizes(),
            "best_2d": best("2d"),
            "best_3d": best("3d"),
            "test_acc": {n: r["scores"]["test"]["accuracy"] for n, r in results.items()},
            "found_only_acc": {n: r["scores"]["found_only"]["accuracy"] for n, r in results.items()},
            "seconds": round(seconds, 1),
            "fusions": fusion_rows(results),
        },
    )
    save_text(paths.comparison, protocol.comparison_markdown(results, sets.sizes(), classes, labels.name))


def fusion_rows(results: dict) -> dict[str, dict]:
    """Each fusion row's members and weights, as summary.json and the MLflow run record them."""
    return {n: {"models": r["models"], "weights": r["weights"]} for n, r in results.items() if "models" in r}


def confusion_csv(actual: np.ndarray, predicted: np.ndarray, classes: tuple[str, ...]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["actual", "predicted"])
    w.writerows((classes[a], classes[b]) for a, b in zip(actual, predicted))
    return out.getvalue()


if __name__ == "__main__":
    try:
        main()
    except (params.ParamError, ValueError, FileNotFoundError) as e:
        sys.exit(f"evaluate: {e}")
