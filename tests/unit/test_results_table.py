"""bench/results_table.py on committed runs: the README's tables come from the metrics files."""

import json
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = ROOT / "bench" / "results_table.py"
FERPLUS = ROOT / "results" / "ferplus"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True)


def test_tables_of_a_committed_run_show_its_metrics():
    out = run(str(FERPLUS))
    assert out.returncode == 0, out.stderr
    summary = json.loads((FERPLUS / "metrics" / "summary.json").read_text())
    resnet_row = next(line for line in out.stdout.splitlines() if line.startswith("| resnet | 2d |"))
    assert f"{summary['test_acc']['resnet']:.2%}" in resnet_row
    assert "| blur:1 |" in out.stdout  # the shift suite's table
    # README's "At a glance" first: the split that chose, the one reported, the suite's mean
    assert out.stdout.startswith("| model | family | PublicTest (chooses) | PrivateTest (reported) |")
    shifted = json.loads((FERPLUS / "metrics" / "shifts.json").read_text())["models"]["resnet"]["test"]["shifted"]
    glance = next(line for line in out.stdout.splitlines() if line.startswith("| resnet | 2d |"))
    assert f"| {summary['test_acc']['resnet']:.2%} | {shifted:.2%} |" in glance


def test_old_against_new_shows_each_change():
    out = run(str(FERPLUS), "--against", str(ROOT))
    assert out.returncode == 0, out.stderr
    old = json.loads((ROOT / "metrics" / "summary.json").read_text())["test_acc"]
    new = json.loads((FERPLUS / "metrics" / "summary.json").read_text())["test_acc"]
    rows = {line.split(" | ")[0].strip("| "): line for line in out.stdout.splitlines() if line.startswith("| ")}
    for name in ("resnet", "landmark_mlp", "fusion"):
        assert f"{100 * (new[name] - old[name]):+.2f}" in rows[name]
    same = run(str(FERPLUS), "--against", str(FERPLUS))
    change_cells = [
        line.split("|")[5].strip()
        for line in same.stdout.splitlines()
        if line.split("|")[1:2] and line.split("|")[1].strip() in new
    ]
    assert len(change_cells) == len(new) and set(change_cells) == {"+0.00"}


def test_a_folder_without_metrics_is_named():
    out = run(str(ROOT / "bench"))
    assert out.returncode != 0
    assert "bench: expected metrics/summary.json" in out.stderr
