"""README's GPU recipe for the image nets, inside a wall-clock budget: for a GPU lent for minutes.

    python bench/gpu_recipe.py --budget 470 --out /tmp/gpu [--data data] [--device cuda]
    python bench/gpu_recipe.py --budget 380 --out /tmp/gpu --full vgg    # one model, whole schedule

The full recipe (README "Running on a GPU") trains for hundreds of epochs. This measures what a
short loan can: (1) resnet alone for 3 epochs, every epoch validated: time per epoch on the chip;
(2) cnn, vgg and resnet side by side for 2 epochs: each trains on it, and their time per epoch
together; (3) the three side by side with the recipe's epochs, or as many as fit what is left of
the budget (summary.json says which); (4) their PublicTest and PrivateTest accuracy, plain and
under the shift suite (bench/shift_recipes.py). Each run is `python -m stages.train <model>` in a
scratch project under --work whose params.yaml is ours with the recipe's values. --full skips (1)-(2)
and trains the models named at the recipe's own epochs (a run the budget stops leaves no file).

--out gets summary.json, shifts.json, <model>.pt and bundle.tar.gz (logs and per-epoch curves).
--images-xz/--meta instead of --data read the arrays carried compressed, where a transfer limit is
tight: `--pack .gpu` writes them (xz, delta at one image row, preset 9: 55.5 MB against the npz's 83)."""

from __future__ import annotations

import argparse
import csv
import json
import lzma
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
# fer3d from this checkout without an install: a GPU machine gets a bare copy of the tree
sys.path.insert(0, str(ROOT))
from fer3d.io import load_npz, save_bytes, save_json, save_npz  # noqa: E402

# README's `dvc exp run -n gpu-recipe` values for the image nets (tests/unit/test_gpu_recipe.py)
RECIPE = {
    "device": "cuda",
    "batch_size": 256,
    "lr": 0.003,
    "models.resnet.epochs": 200,
    "models.resnet.widths": [64, 128, 256],
    "models.vgg.epochs": 200,
    "models.vgg.widths": [64, 128, 256, 512],
    "models.cnn.epochs": 120,
}
MODELS = ("resnet", "vgg", "cnn")


class Budget:
    def __init__(self, seconds: float):
        self.start, self.seconds = time.time(), seconds

    def left(self) -> float:
        return self.start + self.seconds - time.time()

    def say(self, *words) -> None:
        print(f"[{time.time() - self.start:6.1f} s]", *words, flush=True)


def scratch_project(work: Path, name: str, data: Path, overrides: dict) -> Path:
    """A project folder whose params.yaml is ours with `overrides` (dotted keys) applied."""
    root = work / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "data").symlink_to(data.resolve())
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in overrides.items():
        *parents, last = key.split(".")
        node = p
        for part in parents:
            node = node[part]
        node[last] = value
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    return root


def train_side_by_side(root: Path, models, logs: Path, budget: Budget, limit: float) -> dict:
    """`python -m stages.train` of each model at once; their exit codes ('killed' past `limit` s)."""
    env = {**os.environ, "FER3D_ROOT": str(root), "FER3D_PROGRESS": "0", "FER3D_TRACKING": "off"}
    env["PYTHONUNBUFFERED"] = "1"
    procs = {}
    for m in models:
        with open(logs / f"{root.name}_{m}.log", "w") as log:
            procs[m] = subprocess.Popen(
                [sys.executable, "-m", "stages.train", m], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
    codes = {}
    for m, proc in procs.items():
        try:
            codes[m] = proc.wait(timeout=max(1.0, limit - (time.time() - budget.start)))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes[m] = "killed"
        budget.say(root.name, m, "exit", codes[m])
        if codes[m] != 0:
            print((logs / f"{root.name}_{m}.log").read_text()[-3000:], flush=True)
    return codes


def epoch_seconds(root: Path, model: str) -> list[float]:
    curve = root / "metrics" / "train" / f"{model}_curve.csv"
    return [float(r["seconds"]) for r in csv.DictReader(curve.open())] if curve.exists() else []


# xz's delta filter at one image row (48 bytes) and LZMA2 preset 9: 55.5 MB for FER2013's images
XZ_FILTERS = [{"id": lzma.FILTER_DELTA, "dist": 48}, {"id": lzma.FILTER_LZMA2, "preset": 9}]


def pack(fer2013: Path, target: Path) -> tuple[Path, Path]:
    """fer2013.npz as (images.xz, meta.npz) in `target`, what --images-xz/--meta read (~80 s)."""
    arrays = load_npz(fer2013)
    target.mkdir(parents=True, exist_ok=True)
    images = arrays.pop("images")
    if images.dtype != np.uint8 or images.shape[1:] != (48, 48):
        sys.exit(f"{fer2013}: images must be uint8 48x48, found {images.dtype} {images.shape}")
    images_xz = save_bytes(target / "images.xz", lzma.compress(images.tobytes(), filters=XZ_FILTERS))
    return images_xz, save_npz(target / "meta.npz", **arrays)


def unpack(images_xz: Path, meta: Path, target: Path) -> Path:
    arrays = load_npz(meta)
    raw = lzma.decompress(images_xz.read_bytes())
    arrays["images"] = np.frombuffer(raw, np.uint8).reshape(len(arrays["label"]), 48, 48)
    save_npz(target / "fer2013.npz", **arrays)  # the download stage's writer: whole, or not at all
    return target


# Seconds budgeted per sampled second of an epoch: a third of the time spare, since an epoch of the
# 2-epoch runs is a sample and a run stopped at the budget leaves no model file. On the H200
# (2026-12-04) the recipe run took 285 s where 1.5x its sample said 369.
SPARE = 1.5
FEWEST_EPOCHS = 2


def fitting_epochs(recipe_epochs: int, seconds_per_epoch: float, seconds_left: float) -> int:
    """The recipe's epochs, or as many as fit with time to spare (at least FEWEST_EPOCHS)."""
    return int(max(FEWEST_EPOCHS, min(recipe_epochs, seconds_left // (SPARE * seconds_per_epoch))))


def fits_at_all(seconds_per_epoch: float, seconds_left: float) -> bool:
    """Whether the fewest epochs fitting_epochs would pick fit in what is left, with the same spare."""
    return seconds_left >= FEWEST_EPOCHS * SPARE * seconds_per_epoch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=470, help="wall-clock seconds for all of it")
    ap.add_argument("--out", type=Path, help="required unless --pack")
    ap.add_argument("--work", type=Path, default=Path("/tmp/fer3d_gpu_recipe"))
    ap.add_argument("--data", type=Path, default=ROOT / "data", help="a folder holding fer2013.npz")
    ap.add_argument("--images-xz", type=Path)
    ap.add_argument("--meta", type=Path, help="npz of label, split, row (with --images-xz)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--pack", type=Path, metavar="DIR", help="only write --data as DIR/images.xz + DIR/meta.npz")
    ap.add_argument(
        "--full",
        nargs="+",
        choices=MODELS,
        metavar="MODEL",
        help="skip the samples: train these side by side at the recipe's full epochs, stopped at the budget",
    )
    args = ap.parse_args()
    if args.pack:
        for path in pack(args.data / "fer2013.npz", args.pack):
            print(path, f"{path.stat().st_size / 1e6:.1f} MB")
        return
    if args.out is None:
        ap.error("--out is required")
    budget, out, logs = Budget(args.budget), args.out, args.work / "logs"
    out.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    data = unpack(args.images_xz, args.meta, args.work / "data") if args.images_xz else args.data
    if not (data / "fer2013.npz").exists():
        sys.exit(f"{data / 'fer2013.npz'}: not found; run `dvc repro download` or give --data / --images-xz")
    recipe = {**RECIPE, "device": args.device}
    summary: dict = {"budget_s": args.budget, "recipe": recipe, "python": sys.version.split()[0]}
    try:
        run(recipe, data, args.work, logs, out, budget, summary, args.full)
    finally:
        save_json(out / "summary.json", summary)
        bundle(args.work, out)
        budget.say("done")


def bundle(work: Path, out: Path) -> None:
    """The logs and each run's metrics (curves, train summaries) in one archive."""
    keep = work / "bundle"
    shutil.rmtree(keep, ignore_errors=True)
    shutil.copytree(work / "logs", keep / "logs")
    for project in ("resnet_alone", "side_by_side", "recipe"):
        if (work / project / "metrics").exists():
            shutil.copytree(work / project / "metrics", keep / project)
    shutil.make_archive(str(out / "bundle"), "gztar", keep)


def run(recipe: dict, data: Path, work: Path, logs: Path, out: Path, budget: Budget, summary: dict, full=None) -> None:
    import torch

    summary["torch"], summary["cuda"] = torch.__version__, torch.version.cuda
    summary["chip"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    budget.say("torch", torch.__version__, "on", summary["chip"])
    if full:
        recipe_run(recipe, {m: recipe[f"models.{m}.epochs"] for m in full}, data, work, logs, out, budget, summary)
        return
    every_epoch = {"train.validate_last": 1.0}

    alone = scratch_project(work, "resnet_alone", data, {**recipe, **every_epoch, "models.resnet.epochs": 3})
    codes = train_side_by_side(alone, ["resnet"], logs, budget, 150)
    summary["resnet_alone"] = {"exit": codes, "epoch_s": epoch_seconds(alone, "resnet")}
    budget.say("resnet alone, seconds per epoch", summary["resnet_alone"]["epoch_s"])
    if codes["resnet"] != 0:
        return

    two = {f"models.{m}.epochs": 2 for m in MODELS}
    together = scratch_project(work, "side_by_side", data, {**recipe, **every_epoch, **two})
    codes = train_side_by_side(together, MODELS, logs, budget, 240)
    seconds = {m: epoch_seconds(together, m) for m in MODELS}
    summary["side_by_side"] = {"exit": codes, "epoch_s": seconds}
    budget.say("side by side, seconds per epoch", seconds)
    if any(c != 0 for c in codes.values()):
        return

    left = budget.left() - 60  # start-up, scoring and packing
    if not fits_at_all(max(seconds[m][-1] for m in MODELS), left):
        budget.say("no time left for the recipe run")
        return
    epochs = {m: fitting_epochs(recipe[f"models.{m}.epochs"], seconds[m][-1], left) for m in MODELS}
    recipe_run(recipe, epochs, data, work, logs, out, budget, summary)


def recipe_run(
    recipe: dict, epochs: dict, data: Path, work: Path, logs: Path, out: Path, budget: Budget, summary: dict
):
    """The models of `epochs` side by side, stopped at the budget, and their model files scored."""
    models = list(epochs)
    summary["epochs"] = epochs  # fewer than the recipe's where the budget cut them
    budget.say("epochs", epochs, "of the recipe's", {m: recipe[f"models.{m}.epochs"] for m in models})
    main_run = scratch_project(work, "recipe", data, {**recipe, **{f"models.{m}.epochs": e for m, e in epochs.items()}})
    started = time.time()
    codes = train_side_by_side(main_run, models, logs, budget, budget.seconds - 30)
    summary["recipe_run"] = {"exit": codes, "wall_s": round(time.time() - started, 1)}
    for m in models:
        metrics = main_run / "metrics" / "train" / f"{m}.json"
        summary["recipe_run"][m] = json.loads(metrics.read_text()) if metrics.exists() else None
        if (main_run / "models" / f"{m}.pt").exists():
            shutil.copy(main_run / "models" / f"{m}.pt", out / f"{m}.pt")
    files = [f"{m}={out / f'{m}.pt'}" for m in models if (out / f"{m}.pt").exists()]
    if files:
        score = [sys.executable, str(ROOT / "bench" / "shift_recipes.py"), *files, "--data", str(data / "fer2013.npz")]
        score += ["--json", str(out / "shifts.json"), "--device", recipe["device"], "--backend", "torch"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        subprocess.run(score, cwd=ROOT, env=env, timeout=max(10.0, budget.left()))


if __name__ == "__main__":
    main()
