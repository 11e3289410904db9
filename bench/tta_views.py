"""Test-time views beyond the flip (issue 13, "test-time crops where they pay for themselves"): each
2D model of a finished run scored on PublicTest and PrivateTest with its probabilities averaged over
more views of every face, and the run's fusion rows re-fitted on PublicTest with those probabilities
in place of the 2D members' (the 3D members' stay the run's stored ones).

    python bench/tta_views.py [--run DIR] [--threads 2] [--json out.json] [--models resnet] [--shifts]

--shifts also scores every view set on the run's shift suite (params' shifts.suite applied to
PublicTest and PrivateTest, as evaluate_shifts does for the 2D models) and prints each set's plain and
shifted accuracy per split: the test-time views chosen on shifted PublicTest, as issue 13 asks.
Every view is scored in the model file's scoring precision (bf16 on AMX CPUs for bf16-trained models,
fer3d.device.resolve_scoring_precision), as the evaluate stage scores it.

View sets (each with the mirror of every view, as the evaluate stage's flip average):
  flip     the face and its mirror: 2 views
  shift2   + the face shifted 2 px up, down, left, right (reflect-padded, as training shifts): 10 views
  zoom     + zoomed 0.93x and 1.07x about the centre (training zooms 0.9-1.1): 6 views
  all      the 14 views together
  filed    each model file's own views, as the evaluate stage scores them (flip, or shift2 for a file
           with `tta_shift: 2`, as the default resnet): a check, it equals the run's stored numbers
Forward passes, hence scoring time, grow with the views (5x for shift2, 7x for all)."""

from __future__ import annotations

import argparse
import sys
import time

import fusion_members  # bench/, beside this script
import numpy as np
import torch

from fer3d import params
from fer3d.config import TEST, VAL, Paths
from fer3d.evaluation import shifts
from fer3d.inference.classifier import Classifier
from fer3d.io import save_json
from fer3d.models.inputs import autocast, flip_images, shifted_views, view_offsets
from fer3d.training.augment import rotate_scale

SHIFT_PX = 2
ZOOMS = (0.93, 1.07)
VIEW_SETS = {
    "flip": lambda view: view == "id",
    "shift2": lambda view: view == "id" or view.startswith("shift"),
    "zoom": lambda view: view == "id" or view.startswith("zoom"),
    "all": lambda view: True,
}


def filed_set(classifier: Classifier, path) -> str:
    """The view set a model file asks the evaluate stage for: the flip, or shift2 where its tta_shift is 2."""
    if classifier.tta_shift not in (0, SHIFT_PX):
        sys.exit(f"{path}: tta_shift {classifier.tta_shift}, and this bench's shifted views are {SHIFT_PX} px")
    return "shift2" if classifier.tta_shift else "flip"


def views(x: torch.Tensor):
    """(name, batch) of every view of a standardised (B, 1, 48, 48) batch, before mirroring."""
    b = x.shape[0]
    yield "id", x
    # the model file's `tta_shift` views, named by their crop offsets (fer3d.models.inputs.shifted_views)
    for (dy, dx), view in zip(view_offsets(SHIFT_PX), shifted_views(x, SHIFT_PX)):
        yield f"shift{dy},{dx}", view
    for zoom in ZOOMS:
        yield f"zoom{zoom}", rotate_scale(x, torch.zeros(b), torch.full((b,), zoom))


@torch.no_grad()
def view_probabilities(classifier: Classifier, crops: np.ndarray, batch: int = 512) -> dict[str, np.ndarray]:
    """{view name (mirrored ones prefixed 'flip-'): (N, C) probabilities}, in the file's scoring precision."""
    model = classifier.model.eval()
    out: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(crops), batch):
        x = classifier.encode(crops=crops[i : i + batch]).contiguous(memory_format=torch.channels_last)
        for prefix, xs in (("", x), ("flip-", flip_images(x))):
            for name, v in views(xs):
                with autocast(classifier.device, classifier.precision):
                    proba = model(v).float().softmax(1)
                out.setdefault(prefix + name, []).append(proba.numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def averaged(probas: dict[str, np.ndarray], keep) -> np.ndarray:
    return np.mean([p for name, p in probas.items() if keep(name.removeprefix("flip-"))], axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default=".", help="a finished run's folder (models/, metrics/probabilities.npz)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the numbers here")
    ap.add_argument("--models", help="comma-separated 2D models to score (default: every 2D model of the run)")
    ap.add_argument("--shifts", action="store_true", help="also score each view set on the shift suite")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    paths = Paths(args.run)
    fusions, rows, has_mesh, stored, labels, split, families, fer = fusion_members.stored_run(paths)
    label = labels.label[rows]
    prior = next(iter(fusions.values())).prior
    image_models = [m for m in stored if families[m] == "2d"]
    if args.models:
        unknown = sorted(set(args.models.split(",")) - set(image_models))
        if unknown:
            sys.exit(f"--models: {unknown} are not 2D models of {paths.probabilities}; those are {image_models}")
        image_models = [m for m in image_models if m in args.models.split(",")]
    if not image_models:
        sys.exit(f"{paths.probabilities}: no 2D model to score")

    classifiers = {m: Classifier.from_file(paths.models / f"{m}.pt") for m in image_models}
    per_view, filed = {}, {}
    for m, classifier in classifiers.items():
        start = time.perf_counter()
        filed[m] = filed_set(classifier, paths.models / f"{m}.pt")
        per_view[m] = view_probabilities(classifier, fer["images"][rows])
        print(f"{m}: {len(per_view[m])} views of {len(rows)} faces in {time.perf_counter() - start:.0f} s", flush=True)

    def keep_of(set_name: str, m: str):
        return VIEW_SETS[filed[m] if set_name == "filed" else set_name]

    set_names = [*VIEW_SETS, "filed"]
    results: dict = {"models": {}, "fusion": {}}
    print("\n| model | views | PublicTest | PrivateTest |\n|---|---|---|---|")
    for m in image_models:
        for set_name in set_names:
            pred = averaged(per_view[m], keep_of(set_name, m)).argmax(1)
            acc = {k: float((pred[split == s] == label[split == s]).mean()) for k, s in (("val", VAL), ("test", TEST))}
            results["models"].setdefault(m, {})[set_name] = acc
            print(f"| {m} | {set_name} | {100 * acc['val']:.2f}% | {100 * acc['test']:.2f}% |")
    print("\n| fusion row | 2D views | PublicTest | PrivateTest | weights |\n|---|---|---|---|---|")
    for set_name in set_names:
        probas = {**stored, **{m: averaged(per_view[m], keep_of(set_name, m)) for m in image_models}}
        for row, fusion in fusions.items():
            r, _ = fusion_members.evaluate_row(fusion.members, probas, families, prior, label, split, has_mesh)
            results["fusion"].setdefault(row, {})[set_name] = r
            weights = fusion_members.weights_text(r)
            print(f"| {row} | {set_name} | {100 * r['val']:.2f}% | {100 * r['test']:.2f}% | {weights} |")
    if args.shifts:
        suite = shifts.parse_suite(params.get(params.load(paths.params), "shifts.suite", list))
        crops = fer["images"][rows]
        results["shifts"] = shifted_accuracy(
            suite, classifiers, per_view, set_names, keep_of, crops, rows, label, split
        )
    if args.json:
        save_json(args.json, results)


def shifted_accuracy(suite, classifiers, per_view, set_names, keep_of, crops, rows, label, split) -> dict:
    """{model: {view set: {split: {"plain", "shifted" (the suite's mean), each shift's}}}}, printed as a table."""
    out: dict = {}
    for m, classifier in classifiers.items():
        start = time.perf_counter()
        shifted = {s.name: view_probabilities(classifier, s(crops, rows)) for s in suite}
        print(f"{m}: {len(suite)} shifts scored in {time.perf_counter() - start:.0f} s", flush=True)
        for set_name in set_names:
            keep = keep_of(set_name, m)
            preds = {"plain": averaged(per_view[m], keep).argmax(1)}
            preds |= {name: averaged(probas, keep).argmax(1) for name, probas in shifted.items()}
            row = out.setdefault(m, {}).setdefault(set_name, {})
            for k, s in (("val", VAL), ("test", TEST)):
                w = split == s
                acc = {name: float((pred[w] == label[w]).mean()) for name, pred in preds.items()}
                acc["shifted"] = float(np.mean([acc[shift.name] for shift in suite]))
                row[k] = acc
    print("\n| model | views | PublicTest plain | shifted | PrivateTest plain | shifted |\n|---|---|---|---|---|---|")
    for m, sets in out.items():
        for set_name, r in sets.items():
            cells = " | ".join(f"{100 * r[k][c]:.2f}%" for k in ("val", "test") for c in ("plain", "shifted"))
            print(f"| {m} | {set_name} | {cells} |")
    return out


if __name__ == "__main__":
    main()
