"""What the CLI refuses before any model is loaded or any face is scored (so a mistake costs seconds,
not a whole run), and what an interrupted command leaves: the commands run in-process here, on
real files, with a models folder that holds no model (a check that came too late would say so)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.cbook
import pytest
import torch

from fer3d.app import cli
from tests.conftest import ROOT

PHOTO = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def fails(capsys, *argv: str) -> str:
    """The one-line error of `fer3d argv` (argparse's or a command's), asserting it is not a traceback."""
    with pytest.raises(SystemExit) as stop:
        cli.main(list(argv))
    message = stop.value.code if isinstance(stop.value.code, str) else capsys.readouterr().err
    assert stop.value.code != 0 and "Traceback" not in message
    return message


@pytest.fixture
def no_models(tmp_path) -> str:
    (tmp_path / "no_models").mkdir()
    return str(tmp_path / "no_models")


def test_outputs_that_cannot_be_written_are_named_before_the_work(capsys, tmp_path, no_models):
    long_name = "x" * 300 + ".json"
    under_a_file = f"{PHOTO}/p.json"
    cases = [
        (["predict", str(PHOTO), "--out", under_a_file], f"--out {under_a_file}: {PHOTO} is a file, not a folder"),
        (["predict", str(PHOTO), "--out", str(tmp_path / long_name)], "is 305 bytes; names here hold at most 240"),
        (["evaluate-folder", str(tmp_path), "--out", under_a_file], f"{PHOTO} is a file, not a folder"),
        (["gradcam", str(PHOTO), "--out", str(PHOTO)], f"--out {PHOTO} is a file; give a folder"),
        (["viewer", str(PHOTO), "--png", str(tmp_path)], f"--png {tmp_path} is a folder; give a file name"),
        (["export", "--format", "onnx", "--out", f"{PHOTO}/onnx"], f"{PHOTO} is a file, not a folder"),
    ]
    for argv, message in cases:
        assert message in fails(capsys, *argv, "--models-dir", no_models), argv
    assert not list(tmp_path.glob("*.json")) and not list(tmp_path.glob(".*"))


def test_bad_option_values_are_named(capsys, tmp_path, no_models):
    cases = [
        (
            ["predict", str(PHOTO), "--device", "tpu"],
            "argument --device: must be auto, cpu, cuda or cuda:N, found 'tpu'",
        ),
        (["predict", str(PHOTO), "--device", "cuda:x"], "found 'cuda:x'"),
        (["evaluate-folder", str(tmp_path), "--seed", "-1"], "--seed must be >= 0, found -1"),
        (["evaluate-folder", str(tmp_path), "--resamples", "100000000000"], "--resamples must be 100..100,000"),
        (["gradcam", str(PHOTO), "--model", ""], "--model '' names no model; give comma-separated names, e.g. cnn,vgg"),
        (
            ["gradcam", str(PHOTO), "--model", "../models/cnn"],
            "--model: '../models/cnn' is a path; give a model's name",
        ),
        (["export", "--format", "onnx", "--models", ",", "--out", str(tmp_path)], "e.g. cnn,resnet\n"),
    ]
    if not torch.cuda.is_available():
        cases.append((["predict", str(PHOTO), "--device", "cuda"], "is 'cuda' but CUDA is not available here"))
    for argv, message in cases:
        assert message in fails(capsys, *argv, "--models-dir", no_models) + "\n", argv


def test_gradcam_refuses_two_inputs_that_would_write_one_png(capsys, tmp_path, no_models):
    (tmp_path / "other").mkdir()
    twin = tmp_path / "other" / PHOTO.name
    twin.write_bytes(PHOTO.read_bytes())
    message = fails(capsys, "gradcam", str(PHOTO), str(twin), "--out", str(tmp_path / "g"), "--models-dir", no_models)
    assert f"{PHOTO} and {twin} would both write {tmp_path / 'g' / 'grace_hopper_cnn.png'}" in message


def test_a_terminated_command_leaves_no_temp_file(tmp_path):
    """`kill` (SIGTERM) in the middle of writing an output: the command exits 143 and atomic_path's
    temp file is removed, so neither the output nor a hidden `.name.xxxx` file stays."""
    script = textwrap.dedent(
        """
        import sys, time
        from fer3d.app import cli
        from fer3d.io import atomic_path

        def add_hang(subparsers):
            def hang(args):
                with atomic_path(args.target) as tmp:
                    tmp.write_text("half")
                    print("writing", flush=True)
                    time.sleep(60)
            p = subparsers.add_parser("hang")
            p.add_argument("target")
            p.set_defaults(func=hang)

        cli.COMMANDS.append(add_hang)
        sys.exit(cli.main(["hang", sys.argv[1]]))
        """
    )
    target = tmp_path / "out" / "result.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline() == "writing\n"
    assert re.fullmatch(r"\.result\.json\.\w+\.json", next(target.parent.iterdir()).name)  # the temp file, mid-write
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert list(target.parent.iterdir()) == []
