"""What other members would do to a fusion row, without re-running the pipeline: weights re-fitted
on PublicTest (as the evaluate stage fits them, fer3d.inference.fusion.fit_weights) and accuracy on
PublicTest and on all of PrivateTest, for member sets taken from a finished run's stored
probabilities (metrics/probabilities.npz) and from other model files scored here, e.g. trials with
a longer schedule. Used for the budget question of issue 13: what a better cnn is worth to the
fusion, and what the fusion loses without the models that got no weight.

    python bench/fusion_members.py [--run DIR] [--model cnn28=/tmp/exp/c28/models/cnn.pt ...] \\
        [--landmarks FILE] [--mean NAME=m1,m2,... ...] [--row NAME=m1,m2,... ...] [--json out.json]

Without --row: the run's own rows (models/fusion.json) and, for each --model, the widest row (`fusion`)
with it in place of the member of the same architecture. 3D members vote only where FaceMesh found a
face, the evaluate stage's rule. --mean: a new member that averages others' probabilities with equal
weights, as one model file with `members` answers (an ensemble of seeds, say); it is a row of its
own and may be a member of --row sets. --landmarks: score the 3D --model files on another landmarks file
(a trial's re-extracted points) instead of the run's; the fusion keeps the run's has_mesh.

Each swapped row (and with --against NAME every --row) is also compared with the row it replaces on
the same images: its accuracy minus that row's on PublicTest and on PrivateTest, with a 95% paired
bootstrap interval (fer3d.evaluation.metrics.paired_difference), so a trial's lead or loss on the
split that chooses can be told from the luck of which images it holds."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from typing import NamedTuple

import numpy as np
import torch

from fer3d import params
from fer3d.config import TEST, VAL, Paths
from fer3d.data import labels as label_set
from fer3d.evaluation.metrics import paired_difference
from fer3d.inference.fusion import Fusion, fit_weights, load_fusions
from fer3d.inference.onnx_export import bulk_classifier
from fer3d.io import load_npz, save_json


def stored_probabilities(paths: Paths, fusions: dict) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The evaluate stage's rows (PublicTest + PrivateTest), their has_mesh and every model's
    probabilities (the `fusions` rows left out: they are re-fitted here)."""
    stored = load_npz(paths.probabilities)
    models = {k: stored[k] for k in stored if k not in ("rows", "has_mesh") and k not in fusions}
    return stored["rows"], stored["has_mesh"], models


@functools.cache
def mesh_inputs(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(landmarks as stored, found) of every FER2013 row: read once however many 3D --model files there are."""
    lm = load_npz(path)
    return lm["landmarks"], lm["found"]


def score_file(path: str, landmarks_file: str, crops: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, str, str]:
    """(probabilities on `rows`, family, architecture name) of one model file, through its own
    Classifier (onnxruntime where the evaluate stage's CPU backend would use it); a 3D model reads
    its points from `landmarks_file`."""
    classifier = bulk_classifier(path, torch.device("cpu"), "auto")
    if classifier.needs_mesh:
        landmarks, found = mesh_inputs(landmarks_file)
        proba = classifier.predict_proba(points=landmarks[rows].astype(np.float32), has_mesh=found[rows])
    else:
        proba = classifier.predict_proba(crops=crops)
    return proba, classifier.family, classifier.name


class StoredRun(NamedTuple):
    """What a finished run's evaluate stage left, ready to re-fit."""

    fusions: dict  # fusion rows (models/fusion.json)
    rows: np.ndarray  # the scored FER2013 rows (PublicTest + PrivateTest)
    has_mesh: np.ndarray
    probas: dict[str, np.ndarray]  # every model's stored probabilities on `rows`
    labels: label_set.Labels
    split: np.ndarray  # the rows' split, -1 where the label set leaves a row out
    families: dict[str, str]
    fer: dict[str, np.ndarray]  # fer2013.npz, read once (the crops for --model files)


def stored_run(paths: Paths) -> StoredRun:
    labels = label_set.load(paths, str(params.get(params.load(paths.params), "data.labels", str)))
    fusions = load_fusions(paths.fusion)
    rows, has_mesh, probas = stored_probabilities(paths, fusions)
    fer = load_npz(paths.fer2013)
    split = np.where(labels.kept[rows], fer["split"][rows], -1)
    families = {m: json.loads((paths.eval_metrics / f"{m}.json").read_text())["family"] for m in probas}
    return StoredRun(fusions, rows, has_mesh, probas, labels, split, families, fer)


def parse_named(items: list[str], what: str) -> dict[str, str]:
    named = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            sys.exit(f"{what} must be NAME=VALUE, found {item!r}")
        named[name] = value
    return named


def evaluate_row(
    members: list[str],
    probas: dict,
    families: dict,
    prior: list[float],
    label: np.ndarray,
    split: np.ndarray,
    has_mesh: np.ndarray,
) -> dict:
    val = split == VAL
    takes = [has_mesh if families[m] == "3d" else np.ones_like(has_mesh) for m in members]
    weights = fit_weights([probas[m][val] for m in members], label[val], [t[val] for t in takes])
    fusion = Fusion("row", members, [float(w) for w in weights], [families[m] for m in members], prior)
    correct = fusion.combine(probas, has_mesh).argmax(1) == label
    acc = {key: float(correct[split == s].mean()) for key, s in (("val", VAL), ("test", TEST))}
    return {"members": members, "weights": [round(float(w), 4) for w in weights], **acc}, correct


def compared(correct: np.ndarray, baseline: np.ndarray, split: np.ndarray) -> dict:
    """A row against the one it would replace, split by split: paired_difference on the same images."""
    return {
        key: paired_difference(correct[split == s], baseline[split == s]) for key, s in (("val", VAL), ("test", TEST))
    }


def difference_text(d: dict) -> str:
    low, high = d["interval_95"]
    return f"{100 * d['difference']:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]"


def refuse_taken_name(name: str, given: str, probas: dict) -> None:
    """Exit where `name` is taken: a trial under a member's own name would stand in for that member
    in every row, the baselines too, and each swapped row would be compared with itself."""
    if name in probas:
        sys.exit(f"{given}: {name!r} names one of the run's models or another member; call it another name")


def mean_member(name: str, members: list[str], probas: dict, families: dict) -> tuple[np.ndarray, str, str]:
    """(probabilities, family, architecture) of an equal-weight mean of `members`, one family only."""
    unknown = [m for m in members if m not in probas]
    if unknown:
        sys.exit(f"--mean {name} names {unknown}: not in the run's models nor given with --model ({sorted(probas)})")
    kinds = {families[m] for m in members}
    if len(kinds) != 1:
        sys.exit(f"--mean {name} mixes families {sorted(kinds)}: a mean stands for one model, 2D or 3D")
    return np.mean([probas[m] for m in members], 0), kinds.pop(), name


def weights_text(row: dict) -> str:
    """A fitted row's weights as the tables print them: "cnn 0.2045, resnet 0.6684, ..."."""
    return ", ".join(f"{m} {w}" for m, w in zip(row["members"], row["weights"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default=".", help="a finished run's folder (probabilities.npz, models/fusion.json)")
    ap.add_argument("--model", action="append", default=[], help="NAME=PATH of a model file to score and use")
    ap.add_argument("--landmarks", help="landmarks.npz the 3D --model files are scored on (default: the run's)")
    ap.add_argument("--mean", action="append", default=[], help="NAME=m1,m2,... an equal-weight mean of members")
    ap.add_argument("--row", action="append", default=[], help="NAME=m1,m2,... a member set to fit and score")
    ap.add_argument("--against", help="with --row: a row (of the run's or of --row) every other row is compared with")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    paths = Paths(args.run)
    fusions, rows, has_mesh, probas, labels, split, families, fer = stored_run(paths)
    label = labels.label[rows]
    architecture = {m: m for m in probas}
    landmarks_file = args.landmarks or str(paths.landmarks)
    trials = parse_named(args.model, "--model")
    for name, path in trials.items():
        refuse_taken_name(name, f"--model {name}={path}", probas)
        probas[name], families[name], architecture[name] = score_file(path, landmarks_file, fer["images"][rows], rows)
        if probas[name].shape[1] != len(labels.classes):
            sys.exit(f"{path}: {probas[name].shape[1]} classes, the run's label set has {len(labels.classes)}")
    means = {name: value.split(",") for name, value in parse_named(args.mean, "--mean").items()}
    for name, members in means.items():
        refuse_taken_name(name, f"--mean {name}", probas)
        probas[name], families[name], architecture[name] = mean_member(name, members, probas, families)
    table = {name: f.members for name, f in fusions.items()}
    against: dict[str, str] = {}  # row -> the row it is compared with
    if args.row or means:
        table = {name: [name] for name in means}
        table.update({name: value.split(",") for name, value in parse_named(args.row, "--row").items()})
        if args.against:
            if args.against not in table:
                if args.against not in fusions:
                    sys.exit(f"--against {args.against}: not a --row nor one of the run's rows ({sorted(fusions)})")
                table[args.against] = fusions[args.against].members
            against = {name: args.against for name in table if name != args.against}
    else:  # each model file in place of its architecture in the widest row (`fusion`, by default)
        if args.against:
            sys.exit("--against compares --row sets; without --row each swapped row is compared with the run's own")
        widest = max(fusions.values(), key=lambda f: len(f.members))
        for name in trials:
            row = f"{widest.name}, {name} for {architecture[name]}"
            table[row] = [name if architecture[name] == m else m for m in widest.members]
            against[row] = widest.name
    unknown = sorted({m for members in table.values() for m in members} - set(probas))
    if unknown:
        sys.exit(f"--row names {unknown}: not in {paths.probabilities} nor given with --model ({sorted(probas)})")
    prior = next(iter(fusions.values())).prior  # every model file of a run keeps the same one
    results, correct = {}, {}
    for name, members in table.items():
        results[name], correct[name] = evaluate_row(members, probas, families, prior, label, split, has_mesh)
    for name, baseline in against.items():
        results[name]["against"] = {"row": baseline, **compared(correct[name], correct[baseline], split)}
    print("| row | PublicTest | PrivateTest | weights |\n|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {100 * r['val']:.2f}% | {100 * r['test']:.2f}% | {weights_text(r)} |")
    if against:
        print(
            "\nAgainst the row each replaces, same images, points with a 95% paired bootstrap interval:\n\n"
            "| row | against | PublicTest | PrivateTest |\n|---|---|---|---|"
        )
        for name, baseline in against.items():
            d = results[name]["against"]
            print(f"| {name} | {baseline} | {difference_text(d['val'])} | {difference_text(d['test'])} |")
    if args.json:
        save_json(args.json, results)


if __name__ == "__main__":
    main()
