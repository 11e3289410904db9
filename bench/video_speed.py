"""Speed of `fer3d predict` on a video: sampled frames processed per second, decoding, face detection,
tracking, FaceMesh, every model and the table included (models and detectors loaded beforehand).

    python bench/video_speed.py [--models-dir models] [--data data/fer2013.npz] [--threads 2]
                                [--seconds 10] [--fps 5] [--repeats 3] [--precision auto|fp32|bf16]

On a generated clip (640x400 at 25 frames/s: the real photo grace_hopper.jpg and a FER2013 face
moving, two faces in every frame), with every model of --models-dir and fusion row, then with the
2D models only (cnn,resnet,vgg,fusion_2d: no FaceMesh, no 3D model). Prints the median of
--repeats runs and the machine load (os.getloadavg) before and after each configuration.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WIDTH, HEIGHT, VIDEO_FPS = 640, 400, 25
CONFIGS = {"all models": None, "2D models only": ["cnn", "resnet", "vgg", "fusion_2d"]}


def make_clip(path: Path, crops: np.ndarray, seconds: float) -> Path:
    """The photo sliding right and back, a FER2013 face (160 px) sliding down and back."""
    import cv2
    import matplotlib.cbook

    photo = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    photo = cv2.resize(photo[110:370, 140:400], (180, 180), interpolation=cv2.INTER_AREA)
    face = cv2.cvtColor(cv2.resize(crops[0], (160, 160), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)
    n = round(seconds * VIDEO_FPS)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, (WIDTH, HEIGHT))
    for i in range(n):
        phase = abs((i % 100) - 50) / 50  # 0 → 1 → 0 every 4 s
        frame = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
        x, y = round(20 + 200 * phase), round(20 + 200 * phase)
        frame[30 : 30 + 180, x : x + 180] = photo
        frame[y : y + 160, 450 : 450 + 160] = face
        writer.write(frame)
    writer.release()
    return path


def time_config(clip: Path, models_dir: Path, names, fps: float, repeats: int, out: Path, precision: str) -> dict:
    from fer3d.app.faces import FaceFinder
    from fer3d.app.video import VideoOptions, predict_video
    from fer3d.inference import Predictor

    predictor = Predictor.from_dir(models_dir, names, precision=precision)
    finder = FaceFinder()
    options = VideoOptions(fps=fps)
    try:
        predict_video(clip, predictor, finder, VideoOptions(fps=1), out / "warmup.csv")  # loads FaceMesh
        rates, load_before = [], os.getloadavg()
        for _ in range(repeats):
            start = time.perf_counter()
            summary = predict_video(clip, predictor, finder, options, out / "bench.csv")
            rates.append(summary["frames_sampled"] / (time.perf_counter() - start))
    finally:
        predictor.close()
        finder.close()
    return {
        "models": predictor.names,
        "sampled": summary["frames_sampled"],
        "rows": summary["faces"],
        "rates": rates,
        "load": (load_before, os.getloadavg()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--data", default="data/fer2013.npz", help="FER2013 crops (the download stage's npz)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the generated clip")
    parser.add_argument("--fps", type=float, default=5.0, help="frames per second sampled (0 = every frame)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--precision", default="auto", choices=("auto", "fp32", "bf16"), help="as `fer3d predict --precision`"
    )
    args = parser.parse_args()
    os.environ.setdefault("FER3D_PROGRESS", "0")
    import torch

    from fer3d.io import load_npz

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4", load_npz(args.data)["images"], args.seconds)
        print(
            f"clip: {args.seconds:g} s, {WIDTH}x{HEIGHT} at {VIDEO_FPS} fps, 2 faces a frame; sampled at {args.fps:g}/s"
        )
        print(f"torch threads: {args.threads}, cpus: {os.cpu_count()}, {torch.__version__}, precision {args.precision}")
        for label, names in CONFIGS.items():
            r = time_config(clip, Path(args.models_dir), names, args.fps, args.repeats, Path(tmp), args.precision)
            (b1, b5, _), (a1, a5, _) = r["load"]
            print(
                f"{label} ({len(r['models'])} rows: {','.join(r['models'])}): "
                f"median {statistics.median(r['rates']):.2f} sampled frames/s "
                f"(runs: {', '.join(f'{x:.2f}' for x in r['rates'])}; "
                f"{r['sampled']} frames, {r['rows']} face rows each); "
                f"load 1/5 min before {b1:.2f}/{b5:.2f}, after {a1:.2f}/{a5:.2f}"
            )


if __name__ == "__main__":
    main()
