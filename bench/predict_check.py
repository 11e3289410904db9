"""Does `fer3d predict` on a photo give what the evaluate stage gives on the FER2013 crop? And does
levelling the eyes (--align) help?

    python bench/predict_check.py [--models-dir models] [--models cnn] [--n 300] [--degrees 15]

Each PrivateTest image is made into a "photo": upscaled 4x (bicubic) and set on a canvas twice
as large (edges replicated), once upright and once rotated by a random angle in ±degrees. Predict
then finds the face, frames it like FER2013 and cuts a 48x48 crop, with and without eye alignment.
Printed: how the boxes sit on the original crops (upright photos), face detection rate, mean
absolute pixel difference of the re-cut crop from the original, and each model's accuracy on the
original crops (= the evaluate stage's number on these images) vs on the re-cut crops.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fer3d.app import faces as predict
from fer3d.inference import Predictor
from fer3d.io import load_npz

UPSCALE, CANVAS = 4, 2


def make_photo(crop: np.ndarray, angle: float) -> np.ndarray:
    """The 48x48 crop as a larger photo: upscaled, on a bigger canvas, rotated by `angle` degrees."""
    import cv2

    img = cv2.resize(crop, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
    pad = img.shape[0] * (CANVAS - 1) // 2
    img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    if angle:
        centre = (img.shape[1] / 2, img.shape[0] / 2)
        img = cv2.warpAffine(
            img,
            cv2.getRotationMatrix2D(centre, angle, 1.0),
            img.shape[::-1],
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
    return img


def recut(finder: predict.FaceFinder, photo: np.ndarray, align: bool) -> predict.Face | None:
    """The face predict cuts from the photo (the most confident one), None if none."""
    detections = finder.find(photo)
    if not detections:
        return None
    return predict.crop_face(photo, max(detections, key=lambda d: d.score), align)


def framing(faces: list[predict.Face | None]) -> str:
    """How the upright photos' square boxes sit on the original crop's square (known: the middle
    of the canvas): median offset and size, in crop sides (0, 0, 1 = exactly FER2013's framing)."""
    side = 48 * UPSCALE
    pad = side * (CANVAS - 1) // 2
    boxes = np.array([f.box for f in faces if f is not None], float)
    if not len(boxes):
        return "no faces"
    dx, dy, size = (boxes[:, 0] - pad) / side, (boxes[:, 1] - pad) / side, boxes[:, 2] / side
    q1, q3 = np.percentile(size, [25, 75])
    offset = f"offset x {np.median(dx):+.3f}, y {np.median(dy):+.3f}"
    return f"framing vs FER2013: {offset}, size {np.median(size):.3f} (IQR {q1:.2f}-{q3:.2f})"


def accuracy(
    predictor: Predictor, crops: list[np.ndarray | None], originals: np.ndarray, labels: np.ndarray
) -> dict[str, tuple[float, float]]:
    """Per model: (accuracy on the original crops, on the re-cut crops), both over the images
    whose face was found."""
    found = [i for i, c in enumerate(crops) if c is not None]
    out = {}
    for name, m in predictor.classifiers.items():
        if not found:
            out[name] = (float("nan"), float("nan"))
            continue
        recut_pred = m.predict_proba(crops=np.stack([crops[i] for i in found])).argmax(1)
        original_pred = m.predict_proba(crops=originals[found]).argmax(1)
        out[name] = (float((original_pred == labels[found]).mean()), float((recut_pred == labels[found]).mean()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models-dir", default="models")
    ap.add_argument("--models", default="cnn", help="2D models, comma-separated (default: cnn)")
    ap.add_argument("--n", type=int, default=300, help="PrivateTest images (every k-th, deterministic)")
    ap.add_argument("--degrees", type=float, default=15.0, help="random rotation range of the rotated photos")
    args = ap.parse_args()
    root = Path(args.models_dir).resolve().parent
    fer = load_npz(root / "data" / "fer2013.npz")
    test = np.flatnonzero(fer["split"] == 2)
    rows = test[:: max(1, len(test) // args.n)][: args.n]
    images, labels = fer["images"][rows], fer["label"][rows].astype(int)
    angles = np.random.default_rng(0).uniform(-args.degrees, args.degrees, len(rows))
    predictor = Predictor.from_dir(args.models_dir, args.models.split(","))
    finder = predict.FaceFinder()
    start = time.perf_counter()
    print(f"{len(rows)} PrivateTest images; models {', '.join(predictor.classifiers)}")
    print("accuracy on the faces found: original 48x48 crop (= evaluate) -> crop predict cuts from the photo")
    for rotated in (False, True):
        photos = [make_photo(img, a if rotated else 0.0) for img, a in zip(images, angles)]
        for align in (False, True):
            faces = [recut(finder, p, align) for p in photos]
            crops = [None if f is None else f.crop for f in faces]
            found = [c is not None for c in crops]
            if not rotated and not align:
                print(framing(faces))
            diff = np.mean([np.abs(c.astype(int) - o).mean() for c, o in zip(crops, images) if c is not None])
            pose = f"rotated ±{args.degrees}°" if rotated else "upright"
            what = f"{pose} photo, align {'on ' if align else 'off'}"
            print(
                f"{what}: faces {np.mean(found):.1%}, |crop - original| {diff:4.1f} gray levels, "
                + _fmt(accuracy(predictor, crops, images, labels))
            )
    print(f"({time.perf_counter() - start:.0f} s)")


def _fmt(acc: dict[str, tuple[float, float]]) -> str:
    return ", ".join(f"{k} {a:.1%} -> {b:.1%}" for k, (a, b) in acc.items())


if __name__ == "__main__":
    main()
