"""Seconds per face of `fer3d predict` on CPU, end to end and by step.

    python bench/predict_speed.py [--models-dir models] [--models cnn,...] [--repeat 20] [--image PHOTO]
                                  [--threads 1]

Times predict_files on one photo (default: matplotlib's grace_hopper.jpg, 512x600, one face)
`repeat` times after one warm-up run (models, detectors and FaceMesh already loaded, as in a
long-running `fer3d predict` over many files), then each step alone: face detection (both
MediaPipe models), framing + crop, FaceMesh landmarks (the 3D model files' settings: attempts in
order until one finds a face, on the crop and, with mirror_average, on its mirror image too) and
every model's forward pass (with flip averaging, as predict runs
them). Prints a small table in seconds per face.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fer3d.app import faces as face_io
from fer3d.app import predict
from fer3d.inference import Predictor


def sample_photo() -> Path:
    import matplotlib.cbook

    return Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def timed(fn, repeat: int) -> float:
    """Median seconds of fn() over `repeat` runs, after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models-dir", default="models")
    ap.add_argument("--models", default=None, help="comma-separated (default: every model file, plus the fusion)")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--image", default=None, help="photo to time (default: matplotlib's grace_hopper.jpg)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    photo = Path(args.image) if args.image else sample_photo()
    start = time.perf_counter()
    predictor = Predictor.from_dir(args.models_dir, args.models.split(",") if args.models else None)
    finder = face_io.FaceFinder()
    print(f"loading {len(predictor.classifiers)} models and the detectors: {time.perf_counter() - start:.2f} s")
    faces = len(predict.predict_files([photo], predictor, finder=finder).files[0]["faces"])
    if not faces:
        sys.exit(f"{photo}: no face found; pass --image with a photo of a face")
    end_to_end = timed(lambda: predict.predict_files([photo], predictor, finder=finder), args.repeat) / faces

    image = face_io.read_image(photo)
    detections = finder.find(image)
    crop = face_io.crop_face(image, detections[0], align=True).crop
    points, has_mesh = predictor.find_meshes(crop[None])
    steps = {
        "read image": timed(lambda: face_io.read_image(photo), args.repeat) / faces,
        "face detection (2 models)": timed(lambda: finder.find(image), args.repeat) / faces,
        "frame + align + crop 48x48": timed(lambda: face_io.crop_face(image, detections[0], True), args.repeat),
        "FaceMesh landmarks": timed(lambda: predictor.find_meshes(crop[None]), args.repeat),
    }
    for name, m in predictor.classifiers.items():
        if not m.needs_mesh:
            steps[f"model {name}"] = timed(lambda m=m: m.predict_proba(crops=crop[None]), args.repeat)
        elif has_mesh[0]:
            steps[f"model {name}"] = timed(lambda m=m: m.predict_proba(points=points), args.repeat)
    predictor.close()
    finder.close()
    width = max(map(len, steps))
    print(
        f"{photo.name} ({image.shape[1]}x{image.shape[0]}, {faces} face(s)), torch threads {args.threads}, "
        f"median of {args.repeat}:"
    )
    for step, seconds in steps.items():
        print(f"  {step:<{width}}  {seconds * 1000:7.1f} ms")
    print(f"  {'sum of steps':<{width}}  {sum(steps.values()) * 1000:7.1f} ms")
    print(f"end to end (predict_files): {end_to_end:.3f} s per face")


if __name__ == "__main__":
    main()
