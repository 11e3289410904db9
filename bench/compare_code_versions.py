"""Does a code change move any number? Train the whole pipeline on the same small real subset with
the code of a git revision and with the working tree, then compare every model's weights tensor
by tensor and every model's and fusion row's PrivateTest accuracy.

    python bench/compare_code_versions.py [REV]   (default: HEAD; ~3 min a side on 2 cores)

Model files gain metadata across versions, so their md5 may change; the state_dict tensors and the
scores must not, unless the change meant to move them. FER2013 must be at ../shared/data (or
FER3D_SHARED_DATA)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FER3D_SHARED_DATA", ROOT.parent / "shared" / "data")).resolve()
MODELS = ("cnn", "resnet", "vgg", "landmark_mlp", "landmark_cnn", "distance_cnn", "voxel_cnn", "mesh_gnn")
SMALL = {"data.limit": 60, "epochs": 3, "batch_size": 16, "device": "cpu", "landmarks.workers": 2}


def checkout(rev: str | None, dest: Path) -> Path:
    """The files of `rev` (None: the working tree, tracked and untracked-not-ignored) in dest."""
    dest.mkdir(parents=True)
    if rev is None:
        files = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout.split()
        for rel in files:
            if (ROOT / rel).is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / rel, dest / rel)
    else:
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def small_params(repo: Path) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["shared_dir"] = str(SHARED)
    for dotted, value in SMALL.items():
        *parents, last = dotted.split(".")
        node = params
        for key in parents:
            node = node[key]
        node[last] = value
    for section in params["models"].values():
        section["epochs"] = SMALL["epochs"]
    for section in ("evaluate", "report"):  # fewer Grad-CAM samples, wherever this version keeps them
        if "gradcam_samples" in params.get(section, {}):
            params[section]["gradcam_samples"] = 2
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def repro(repo: Path) -> None:
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.email=b@fer3d", "-c", "user.name=bench", "commit", "-qm", "x"],
    ):
        subprocess.run(cmd, cwd=repo, check=True, capture_output=True)
    env = {
        **os.environ,
        "FER3D_TRACKING": "off",
        "FER3D_PROGRESS": "0",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("FER3D_ROOT", None)
    run = subprocess.run(["dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True)
    if run.returncode:
        sys.exit(f"dvc repro failed in {repo}:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")


def main() -> None:
    rev = sys.argv[1] if len(sys.argv) > 1 else "HEAD"
    with tempfile.TemporaryDirectory(prefix="fer3d-compare-") as tmp:
        sides = {}
        for name, r in ((rev, rev), ("working tree", None)):
            repo = checkout(r, Path(tmp) / ("old" if r else "new"))
            small_params(repo)
            repro(repo)
            sides[name] = repo
        old, new = sides.values()
        print(f"| model | weights: {rev} vs working tree | PrivateTest acc {rev} | working tree |")
        print("|---|---|---|---|")
        acc = {k: json.loads((v / "metrics" / "summary.json").read_text())["test_acc"] for k, v in sides.items()}
        for m in MODELS:
            a = torch.load(old / "models" / f"{m}.pt", weights_only=True)["state_dict"]
            b = torch.load(new / "models" / f"{m}.pt", weights_only=True)["state_dict"]
            same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
            verdict = "bit-identical" if same else "DIFFERENT"
            print(f"| {m} | {verdict} | {acc[rev].get(m)} | {acc['working tree'].get(m)} |")
        for row in sorted(set(acc[rev]) - set(MODELS)):
            print(f"| {row} | – | {acc[rev].get(row)} | {acc['working tree'].get(row)} |")


if __name__ == "__main__":
    main()
