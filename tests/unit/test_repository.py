"""The repository itself: no FER2013 data or anything made from it in git, no secrets in the
committed DVC config, and every stage script listed as a dependency of its stage."""

import subprocess

import yaml

from tests.conftest import ROOT

DATA_SUFFIXES = (".npz", ".npy", ".pt", ".pth", ".ckpt", ".csv.gz", ".zip", ".jpg", ".jpeg", ".png")


def tracked_files() -> list[str]:
    return subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()


def test_git_tracks_no_data_models_or_renders():
    offending = [
        f
        for f in tracked_files()
        if f.lower().endswith(DATA_SUFFIXES)
        or (f.startswith(("data/", "models/", "reports/")) and not f.endswith(".gitignore"))
    ]
    assert offending == []


def test_committed_dvc_config_holds_no_credentials():
    config = (ROOT / ".dvc" / "config").read_text()
    for key in ("access_key_id", "secret_access_key", "password", "token"):
        assert key not in config


def test_every_stage_depends_on_its_script():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        script = body["cmd"].split()[2].replace(".", "/") + ".py"  # python -m stages.x ...
        assert script in body["deps"], f"{name}: {script} missing from deps"
