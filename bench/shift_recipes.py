"""Image models under the shift suite, for choosing a training recipe: plain and shifted accuracy
on PublicTest (what a choice may look at) and PrivateTest (what is reported), without FaceMesh.

    python bench/shift_recipes.py old=/tmp/exp/old/models/cnn.pt new=/tmp/exp/new/models/cnn.pt \
        [--data data/fer2013.npz] [--json out.json] [--backend auto|onnx|torch] [--device auto|cpu|cuda]

Prints one row per model file and split: plain, each shift of params.yaml's shifts.suite, the
suite's mean ("shifted") and the drop. The evaluate_shifts stage gives the same numbers for every
model of the pipeline (3D models included). --backend auto (the default) is the stage's choice:
on CPU it exports each file in memory and scores it with onnxruntime, 1.2-1.6x torch's CPU speed
(the check at export keeps the probabilities within 1e-4 of torch's); on CUDA (--device) torch."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from fer3d import params
from fer3d.config import TEST, VAL
from fer3d.device import resolve_device
from fer3d.evaluation import shifts
from fer3d.inference.base import ClassifierBase
from fer3d.inference.onnx_export import bulk_classifier
from fer3d.io import load_npz


def score(classifier: ClassifierBase, images: np.ndarray, label: np.ndarray, split: np.ndarray, suite) -> dict:
    out = {}
    for key, s in (("val", VAL), ("test", TEST)):
        rows = np.flatnonzero(split == s)  # rotate's direction by dataset row, as the stages shift
        crops, truth = images[rows], label[rows]
        acc = {"plain": float((classifier.predict_proba(crops=crops).argmax(1) == truth).mean())}
        for shift in suite:
            acc[shift.name] = float((classifier.predict_proba(crops=shift(crops, rows)).argmax(1) == truth).mean())
        mean = shifts.shifted_accuracy(acc, suite)
        out[key] = {**acc, "shifted": mean, "drop": acc["plain"] - mean}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="NAME=PATH of 2D model files")
    ap.add_argument("--data", default="data/fer2013.npz")
    ap.add_argument("--json", help="also write the numbers here")
    ap.add_argument("--backend", choices=("auto", "onnx", "torch"), default="auto")
    ap.add_argument("--device", default="cpu", help="auto | cpu | cuda | cuda:N, as params.yaml's device")
    args = ap.parse_args()
    suite = shifts.parse_suite(params.get(params.load(), "shifts.suite", list))
    fer = load_npz(args.data)
    device = resolve_device(args.device)
    results = {}
    for item in args.models:
        name, _, path = item.partition("=")
        classifier = bulk_classifier(path or name, device, args.backend)
        if classifier.needs_mesh:
            sys.exit(f"{path}: a 3D model; the evaluate_shifts stage scores those on FaceMesh's shifted points")
        results[name] = score(classifier, fer["images"], fer["label"].astype(np.int64), fer["split"], suite)
    head = ["model", "split", "plain", *(s.name for s in suite), "shifted", "drop"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for name, r in results.items():
        for key in ("val", "test"):
            cells = [f"{100 * r[key][k]:.2f}" for k in head[2:]]
            print(f"| {name} | {key} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
