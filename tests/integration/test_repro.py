"""`fer3d repro` on small real DVC projects whose stages record when they ran: independent stages
overlap with --jobs 2 and never with --jobs 1, a stage starts only after everything it reads, the
longest known stage goes first, a failure stops what depends on it (and only that), DVC's dvc.lock
ends up the same as after `dvc repro`, and a second run finds everything up to date."""

from __future__ import annotations

import io
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from fer3d.app import repro
from fer3d.app.cli import main as cli_main

# Each stage writes "<start> <end>" (seconds since the epoch) to its output after sleeping.
STAMP = (
    f'{sys.executable} -c "import sys, time; s = time.time(); time.sleep(float(sys.argv[2])); '
    "open(sys.argv[1], 'w').write(f'{s} {time.time()}')\" "
)


def stage(
    out: str, seconds: float = 2.0, deps: tuple[str, ...] = (), fail: bool = False, metric: tuple[str, dict] = ()
) -> dict:
    cmd = f"{STAMP}{out} {seconds}"
    if metric:  # the JSON a stage's metrics hold, as the pipeline's stages write them
        cmd += f" && echo '{json.dumps(metric[1])}' > {metric[0]}"
    for dep in deps:  # read what it depends on, so the dependency is real
        cmd = f"cat {dep} > /dev/null && {cmd}"
    if fail:
        cmd = f"{sys.executable} -c \"import sys; sys.exit('broken on purpose')\""
    spec: dict = {"cmd": cmd, "outs": [out]}
    if deps:
        spec["deps"] = list(deps)
    if metric:
        spec["metrics"] = [{metric[0]: {"cache": False}}]
    return spec


def make_project(root: Path, stages: dict[str, dict]) -> Path:
    run = lambda *cmd: subprocess.run(cmd, cwd=root, check=True, capture_output=True, text=True)
    run("git", "init", "-q")
    run(sys.executable, "-m", "dvc", "init", "-q")
    run(sys.executable, "-m", "dvc", "config", "core.analytics", "false")
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    return root


def interval(root: Path, out: str) -> tuple[float, float]:
    start, end = (float(v) for v in (root / out).read_text().split())
    return start, end


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def run_quiet(root: Path, jobs: int, targets=(), force: bool = False) -> repro.Outcome:
    return repro.run(root, repro.pipeline_stages(root, targets), jobs, force=force, out=io.StringIO())


def lock_outs(root: Path) -> dict[str, str]:
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    return {o["path"]: o["md5"] for s in lock["stages"].values() for o in s.get("outs", [])}


@pytest.fixture
def diamond(tmp_path):
    """a and b independent; c reads both; d reads nothing."""
    return make_project(
        tmp_path,
        {
            "a": stage("a.txt"),
            "b": stage("b.txt"),
            "c": stage("c.txt", 0.1, deps=("a.txt", "b.txt")),
            "d": stage("d.txt", 0.1),
        },
    )


def test_independent_stages_overlap_with_two_jobs_and_wait_for_what_they_read(diamond):
    outcome = run_quiet(diamond, jobs=2)
    assert not outcome.failed and not outcome.not_run
    assert {r.stage.name for r in outcome.runs} == {"a", "b", "c", "d"}
    a, b, c = (interval(diamond, f) for f in ("a.txt", "b.txt", "c.txt"))
    assert overlap(a, b)
    assert c[0] >= max(a[1], b[1])  # c starts only after both of its inputs were written
    # DVC recorded every stage: nothing left to do, and `dvc status` agrees
    status = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=diamond, capture_output=True, text=True)
    assert "Data and pipelines are up to date" in status.stdout
    again = run_quiet(diamond, jobs=2)
    assert all(r.skipped and r.returncode == 0 for r in again.runs)
    assert interval(diamond, "a.txt") == a  # not run again


def test_one_job_runs_one_stage_at_a_time(diamond):
    run_quiet(diamond, jobs=1)
    spans = sorted(interval(diamond, f) for f in ("a.txt", "b.txt", "c.txt", "d.txt"))
    assert not any(overlap(x, y) for x, y in itertools.pairwise(spans))


def test_same_lock_as_dvc_repro(diamond, tmp_path_factory):
    other = make_project(
        tmp_path_factory.mktemp("sequential"),
        yaml.safe_load((diamond / "dvc.yaml").read_text())["stages"],
    )
    run_quiet(diamond, jobs=2)
    subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=other, check=True, capture_output=True)
    ours, theirs = yaml.safe_load((diamond / "dvc.lock").read_text()), yaml.safe_load((other / "dvc.lock").read_text())
    assert set(ours["stages"]) == set(theirs["stages"]) == {"a", "b", "c", "d"}
    for name in ours["stages"]:  # the stamps differ, the shape of each entry does not
        assert ours["stages"][name]["cmd"] == theirs["stages"][name]["cmd"]
        assert [d["path"] for d in ours["stages"][name].get("deps", [])] == [
            d["path"] for d in theirs["stages"][name].get("deps", [])
        ]
        assert [o["path"] for o in ours["stages"][name]["outs"]] == [o["path"] for o in theirs["stages"][name]["outs"]]


def test_longest_known_stage_starts_first(tmp_path):
    root = make_project(
        tmp_path,
        {
            "short": stage("short.txt", 0.1, metric=("short.json", {"seconds": 5})),
            "long": stage("long.txt", 0.1, metric=("long.json", {"train_minutes": 3.0})),
            "unknown": stage("unknown.txt", 0.1),
        },
    )
    assert {s.seconds for s in repro.pipeline_stages(root).values()} == {0.0}  # never ran: nothing known
    run_quiet(root, jobs=1)
    # now each has recorded its time, as the training stages do (train_minutes) and others (seconds)
    stages = repro.pipeline_stages(root)
    assert (stages["long"].seconds, stages["short"].seconds, stages["unknown"].seconds) == (180.0, 5.0, 0.0)
    assert [s.name for s in repro.ready_stages(stages, set(), set())] == ["long", "short", "unknown"]
    run_quiet(root, jobs=1, force=True)
    starts = {n: interval(root, f"{n}.txt")[0] for n in ("short", "long", "unknown")}
    assert starts["long"] < starts["short"] < starts["unknown"]


def test_failure_stops_its_downstream_only(tmp_path):
    root = make_project(
        tmp_path,
        {
            "a": stage("a.txt", 0.5),
            "broken": stage("broken.txt", fail=True),
            "after_broken": stage("after.txt", 0.1, deps=("broken.txt",)),
        },
    )
    outcome = run_quiet(root, jobs=2)
    assert [r.stage.name for r in outcome.failed] == ["broken"]
    assert outcome.not_run == ["after_broken"]
    assert (root / "a.txt").exists() and not (root / "after.txt").exists()
    log = outcome.failed[0].log
    assert log == root / repro.LOG_DIR / "broken.log" and "broken on purpose" in log.read_text()
    lines = repro.summary(outcome)
    assert any(line.startswith("broken: failed (exit ") and str(log) in line for line in lines)
    assert "after_broken: not run" in lines
    assert lines[-1].startswith("1 stage(s) ran, 0 up to date, 1 failed, 1 not run")


def test_a_freed_core_takes_the_next_stage_while_a_long_one_runs(tmp_path):
    """Two jobs, one long stage and three short ones: the short ones follow each other on the
    second core while the long one runs (they used to wait until every running stage had ended)."""
    # 12 s: room for three `dvc repro` start-ups of a few seconds each on a loaded machine
    stages = {"long": stage("long.txt", 12.0), **{n: stage(f"{n}.txt", 0.3) for n in ("b", "c", "d")}}
    root = make_project(tmp_path, stages)
    outcome = run_quiet(root, jobs=2)
    assert not outcome.failed
    long = interval(root, "long.txt")
    assert all(interval(root, f"{n}.txt")[1] < long[1] for n in ("b", "c", "d"))


def test_a_failure_lets_stages_that_do_not_read_it_run(tmp_path):
    """One job: the broken stage fails first; the independent stage after it still runs."""
    root = make_project(
        tmp_path,
        {
            "broken": stage("broken.txt", fail=True),
            "independent": stage("independent.txt", 0.1),
            "after_broken": stage("after.txt", 0.1, deps=("broken.txt",)),
        },
    )
    outcome = run_quiet(root, jobs=1)
    assert [r.stage.name for r in outcome.failed] == ["broken"] and outcome.not_run == ["after_broken"]
    assert (root / "independent.txt").exists()


def test_a_closed_terminal_does_not_stop_the_stages_or_their_logs(tmp_path):
    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError("fer3d repro | head: the reader is gone")

    many_lines = f'{sys.executable} -c "print(chr(10).join(map(str, range(20000))))" && echo done > loud.txt'
    root = make_project(tmp_path, {"loud": {"cmd": many_lines, "outs": ["loud.txt"]}})
    outcome = repro.run(root, repro.pipeline_stages(root), 1, out=ClosedPipe())
    assert [r.returncode for r in outcome.runs] == [0] and (root / "loud.txt").exists()
    assert "19999" in outcome.runs[0].log.read_text()  # the whole output, not the line before the break


def test_targets_take_their_upstream_and_groups(diamond):
    assert set(repro.pipeline_stages(diamond, ["c"])) == {"a", "b", "c"}
    outcome = run_quiet(diamond, jobs=2, targets=["c"])
    assert {r.stage.name for r in outcome.runs} == {"a", "b", "c"}
    assert not (diamond / "d.txt").exists()
    with pytest.raises(ValueError, match=r"no stage 'nope' in dvc.yaml; stages: a, b, c, d"):
        repro.pipeline_stages(diamond, ["nope"])


def test_default_jobs_fill_the_cores_with_trainings():
    cores = repro.cores()
    assert repro.default_jobs(None) == cores  # a project without train.threads: one stage per core
    assert repro.default_jobs(2) == max(1, cores // 2)
    assert repro.default_jobs(0) == 1  # each training takes every core


def test_oversubscribed_trainings_are_warned_about():
    assert repro.oversubscription_warning(1, 2, 2) is None
    assert repro.oversubscription_warning(4, 2, 8) is None
    assert repro.oversubscription_warning(2, 0, 2) is None  # 0: each training takes the cores there are
    assert repro.oversubscription_warning(2, None, 2) is None  # no train.threads: not a fer3d project
    warning = repro.oversubscription_warning(2, 2, 2)
    assert "4 threads for 2 cores" in warning and "use --jobs 1" in warning
    assert "use --jobs 2" in repro.oversubscription_warning(3, 4, 8)


def test_fp32_image_training_on_a_cpu_without_amx_is_noted(monkeypatch, tmp_path, capsys):
    import fer3d.device

    monkeypatch.setattr(fer3d.device.torch.cuda, "is_available", lambda: False)
    stages = ["download", "train_2d@resnet", "evaluate"]
    monkeypatch.setattr(fer3d.device, "cpu_has_amx", lambda: False)
    notice = repro.fp32_notice("auto", "auto", stages)
    assert "no AMX tiles" in notice and "fp32" in notice and "bench/epoch_parts.py --models all" in notice
    assert "make repro-short" in notice  # the measured whole run for such a CPU
    assert repro.fp32_notice("auto", "cpu", stages) == notice
    assert repro.fp32_notice("fp32", "auto", stages) is None  # asked for: nothing to point out
    assert repro.fp32_notice(None, "auto", stages) is None  # no train.precision: not this project's params
    assert repro.fp32_notice("auto", "auto", ["train_3d@landmark_mlp", "evaluate"]) is None  # no image net
    assert repro.fp32_notice("auto", "cuda", stages) is None  # the stage says CUDA is missing
    monkeypatch.setattr(fer3d.device, "cpu_has_amx", lambda: True)
    assert repro.fp32_notice("auto", "auto", stages) is None  # auto is bf16 there

    # `fer3d repro` says it before anything runs, from the project's params.yaml
    project = make_project(tmp_path, {"train_2d": stage("m.txt", 0.1), "other": stage("o.txt", 0.1)})
    (project / "params.yaml").write_text("device: auto\ntrain: {threads: 1, precision: auto}\n")
    monkeypatch.chdir(project)
    monkeypatch.delenv("FER3D_ROOT", raising=False)
    monkeypatch.setattr(fer3d.device, "cpu_has_amx", lambda: False)
    assert cli_main(["repro", "train_2d"]) == 0
    assert "note: this CPU has no AMX tiles" in capsys.readouterr().err
    assert cli_main(["repro", "other"]) == 0  # no 2D training among the stages asked for
    assert "AMX" not in capsys.readouterr().err


def test_command_line(diamond, tmp_path_factory, capsys, monkeypatch):
    monkeypatch.chdir(diamond)
    monkeypatch.delenv("FER3D_ROOT", raising=False)
    assert cli_main(["repro", "--jobs", "2", "d"]) == 0
    printed = capsys.readouterr().out
    assert "fer3d repro: 1 stage(s), up to 2 at a time" in printed
    assert "d | Running stage 'd'" in printed  # each line of a stage's output names the stage
    assert "1 stage(s) ran, 0 up to date, 0 failed, 0 not run" in printed
    with pytest.raises(SystemExit, match="fer3d repro: error: --jobs must be >= 1"):
        cli_main(["repro", "--jobs", "-1"])
    with pytest.raises(SystemExit, match="no stage 'nope'"):
        cli_main(["repro", "nope"])
    assert set(lock_outs(diamond)) == {"d.txt"}  # the target alone ran
    # trainings of as many threads as there are cores, two at a time: said before anything runs
    (diamond / "params.yaml").write_text(f"train: {{threads: {repro.cores()}}}\n")
    assert cli_main(["repro", "--jobs", "2", "d"]) == 0
    assert f"{2 * repro.cores()} threads for {repro.cores()} cores" in capsys.readouterr().err
    (diamond / "params.yaml").unlink()
    monkeypatch.setenv("FER3D_ROOT", str(tmp_path_factory.mktemp("empty")))
    with pytest.raises(SystemExit, match="no dvc.yaml in .*empty"):
        cli_main(["repro"])


def interrupted_repro(root: Path, stages: dict, jobs: int, send, timeout: float) -> tuple[int, str]:
    """fer3d repro in its own process group, `send(pid)` once the first stage's command runs; its
    exit code and output."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("FER3D_ROOT", None)
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fer3d", "repro", "--jobs", str(jobs)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own group, as a terminal's foreground job
        # a runner that starts the tests in the background (`nohup … &`) passes SIGINT down ignored,
        # and fer3d repro would then never hear the Ctrl-C (as in test_interrupts)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    first = next(iter(stages))
    for line in proc.stdout:  # wait until the stage's command is running
        if line.startswith(first) and "> " in line:
            break
    time.sleep(1)
    send(proc.pid)
    try:
        output = proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"fer3d repro still running {timeout:.0f} s after the signal; its output:\n{proc.communicate()[0]}")
    return proc.returncode, output


def test_ctrl_c_reaches_the_running_stages(diamond):
    """Ctrl-C in a terminal signals the whole foreground group: fer3d repro waits for its stages to
    stop, starts nothing more and exits 130."""
    stages = {"slow": stage("slow.txt", 60), "after": stage("after.txt", 0.1, ("slow.txt",))}
    code, output = interrupted_repro(diamond, stages, 2, lambda pid: os.killpg(pid, signal.SIGINT), timeout=30)
    assert code == 130, output  # the output says what the stages did, should this fail
    assert "slow: interrupted; its log:" in output and "after: not run" in output, output
    assert "interrupted (Ctrl-C): 0 stage(s) ran" in output, output
    assert not (diamond / "slow.txt").exists() and not (diamond / "after.txt").exists()


def test_ctrl_c_sent_to_fer3d_repro_alone_still_stops_its_stages(diamond):
    """A supervisor or an IDE's stop button signals the process, not its group: the stage that
    heard nothing is sent SIGINT after a grace period, and fer3d repro exits 130."""
    stages = {"slow": stage("slow.txt", 120)}
    code, output = interrupted_repro(diamond, stages, 1, lambda pid: os.kill(pid, signal.SIGINT), timeout=60)
    assert code == 130, output
    assert "slow: interrupted; its log:" in output and not (diamond / "slow.txt").exists(), output
