"""`fer3d repro`: `dvc repro` with the stages that do not depend on each other run side by side.

DVC runs a pipeline's stages one after another, and the eight models do not depend on each other.
Each training uses `train.threads` threads (the count fixes the weights' bits), so on a machine
with more cores than that, the rest would sit idle. Here each stage is handed to
`dvc repro --single-item` as soon as every stage it depends on has finished, up to `jobs` at a time
(default: cores / train.threads), the longest first (by the seconds its metrics recorded last
time), so resnet starts at once and the short stages fill the other cores. DVC still decides what
is up to date, takes its locks and writes dvc.lock, so every output and lock entry is the one
`dvc repro` gives (a stage new to dvc.lock is added when it finishes, so in a fresh lock the entries
may stand in another order). A failure leaves only its downstream not run.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

LOG_DIR = Path(".dvc/tmp/repro")  # one log per stage, below the project root
SKIPPED_MARKS = ("didn't change, skipping", "is cached - skipping")


@dataclass(frozen=True)
class Stage:
    name: str  # DVC's address: download, train_2d@resnet, ...
    upstream: frozenset[str]  # the stages whose outputs it reads
    seconds: float = 0.0  # what it took last time (its metrics), 0 when unknown


@dataclass
class StageRun:
    stage: Stage
    process: subprocess.Popen
    started: float
    log: Path
    skipped: bool = False  # DVC found it up to date
    seconds: float = 0.0
    returncode: int | None = None


@dataclass
class Outcome:
    runs: list[StageRun] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)  # downstream of a failure, or never started
    wall_seconds: float = 0.0
    interrupted: bool = False
    running_at_interrupt: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[StageRun]:
        """Stages that ended with an error (a running stage has no return code yet)."""
        return [r for r in self.runs if r.returncode not in (0, None)]


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_jobs(training_threads: int | None, cores_here: int | None = None) -> int:
    """As many stages as the cores (this process's, unless given) hold trainings of `training_threads`
    threads (0: all cores; None, a project without that param: one stage per core)."""
    cores_here = cores() if cores_here is None else cores_here
    if training_threads is None:
        return cores_here
    return max(1, cores_here // training_threads) if training_threads > 0 else 1


def oversubscription_warning(jobs: int, training_threads: int | None, cores_here: int) -> str | None:
    """A warning when `jobs` trainings of `training_threads` threads each would share fewer cores:
    the count is fixed (it sets the weights' bits), so the threads would queue for the cores."""
    if not training_threads or jobs * training_threads <= cores_here:
        return None
    return (
        f"warning: {jobs} stages at a time, each training with train.threads={training_threads}, on "
        f"{cores_here} core(s): {jobs * training_threads} threads for {cores_here} cores. Trainings side by side "
        f"then run slower in sum than one after another (2 cores, two 2-thread trainings at once: resnet "
        f"0.56x, landmark_mlp 0.83x the throughput of one at a time); use --jobs "
        f"{default_jobs(training_threads, cores_here)} or a smaller train.threads (which changes the models' bits)"
    )


def fp32_notice(precision: str | None, device: str, stage_names: Iterable[str]) -> str | None:
    """A note before image nets train in fp32 only because this CPU lacks AMX (`train.precision: auto`):
    the README's minutes come from AMX Xeons, and a CPU without them takes several times as long."""
    if precision != "auto" or not any(name.startswith("train_2d") for name in stage_names):
        return None
    from fer3d.device import resolve_device, resolve_precision  # torch: only when there is a 2D training

    try:
        if resolve_precision("auto", resolve_device(device)) != "fp32":
            return None
    except ValueError:  # a bad device param: the stage itself says what is wrong with it
        return None
    return (
        "note: this CPU has no AMX tiles, so train.precision auto trains the image models in fp32, several "
        "times slower than on the AMX Xeons the README's minutes come from. `python bench/epoch_parts.py "
        "--models all` projects each model's minutes here in a few minutes; `make repro-short` runs every stage "
        "with shorter schedules as a DVC experiment (87-110 min on a 2-core AMD EPYC; README: How long make "
        "repro takes)."
    )


def pipeline_stages(root: Path, targets: Iterable[str] = ()) -> dict[str, Stage]:
    """The pipeline's stages (those with a command) from DVC's own graph, in dvc.yaml's order; with
    `targets`, only those (a name, or a foreach/matrix group such as train_2d) and what they need."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        graph = repo.index.graph
        nodes = [s for s in graph.nodes if s.cmd and not getattr(s, "frozen", False)]
        names = {s: address(s, root) for s in nodes}
        stages = {
            names[s]: Stage(
                names[s],
                frozenset(names[u] for u in graph.successors(s) if u in names),
                last_seconds(root, [str(o) for o in s.outs if o.metric]),
            )
            for s in nodes
        }
    targets = list(targets)
    if not targets:
        return stages
    wanted: set[str] = set()
    for target in targets:
        matched = [n for n in stages if n == target or n.split("@", 1)[0] == target]
        if not matched:
            raise ValueError(f"no stage {target!r} in dvc.yaml; stages: {', '.join(stages)}")
        wanted.update(matched)
    todo = list(wanted)
    while todo:
        for up in stages[todo.pop()].upstream:
            if up not in wanted:
                wanted.add(up)
                todo.append(up)
    return {n: s for n, s in stages.items() if n in wanted}


def address(stage, root: Path) -> str:
    """The stage's name as `dvc repro` run in `root` takes it (DVC's own `addressing` is relative to
    the working directory)."""
    dvcfile = os.path.relpath(stage.dvcfile.path, root)
    return stage.name if dvcfile == "dvc.yaml" else f"{dvcfile}:{stage.name}"


def last_seconds(root: Path, metric_paths: list[str]) -> float:
    """Seconds a stage took last time, from the JSON metrics it wrote (`train_minutes` or `seconds`)."""
    for rel in metric_paths:
        path = root / rel
        if path.suffix != ".json" or not path.is_file():
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            if isinstance(data.get("train_minutes"), (int, float)):
                return 60.0 * data["train_minutes"]
            if isinstance(data.get("seconds"), (int, float)):
                return float(data["seconds"])
    return 0.0


def ready_stages(stages: dict[str, Stage], done: set[str], started: set[str]) -> list[Stage]:
    """Stages whose upstream has all finished, not yet started: the longest first, then dvc.yaml's order."""
    order = {name: i for i, name in enumerate(stages)}
    ready = [s for s in stages.values() if s.name not in started and s.upstream <= done]
    return sorted(ready, key=lambda s: (-s.seconds, order[s.name]))


def stage_command(name: str, force: bool) -> list[str]:
    # --wait-for-lock: DVC holds the repository lock while it hashes outputs and writes dvc.lock;
    # a stage finishing then must wait its turn instead of failing.
    force_flag = ["--force"] if force else []
    return [sys.executable, "-m", "dvc", "--wait-for-lock", "repro", "--single-item", *force_flag, name]


def stage_env(jobs: int) -> dict[str, str]:
    """The stage's environment: this Python's folder first on PATH (dvc.yaml's `python` must be this
    venv's), and the cores shared out between the jobs for the stages that take all they see."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("OMP_NUM_THREADS", str(max(1, cores() // jobs)))
    return env


def run(
    root: Path,
    stages: dict[str, Stage],
    jobs: int,
    force: bool = False,
    out: TextIO | None = None,
) -> Outcome:
    """Run `stages` (all up to `jobs` at once, each after its upstream) with `dvc repro`;
    a failure leaves its downstream not run, and every stage that does not read from it still runs."""
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, found {jobs}")
    return Scheduler(root, stages, jobs, force, out or sys.stdout).run()


class Scheduler:
    """One `fer3d repro`: the stages started so far, each followed by a thread that copies its output
    (prefixed with the stage's name) to `out` and its log, and tells the main loop when it ends."""

    def __init__(self, root: Path, stages: dict[str, Stage], jobs: int, force: bool, out: TextIO):
        self.root, self.stages, self.jobs, self.force, self.out = root, stages, jobs, force, out
        self.log_dir = root / LOG_DIR
        self.env, self.width = stage_env(jobs), max((len(n) for n in stages), default=0)
        self.finished: queue.Queue[StageRun] = queue.Queue()
        self.printing = threading.Lock()
        self.outcome = Outcome()
        self.running: dict[str, StageRun] = {}
        self.followers: list[threading.Thread] = []
        self.done: set[str] = set()

    def run(self) -> Outcome:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        try:
            while True:
                self.launch_ready()  # a failed stage never joins `done`: only its downstream waits forever
                if not self.running:
                    break
                r = self.finished.get()
                del self.running[r.stage.name]
                if r.returncode == 0:
                    self.done.add(r.stage.name)
        except KeyboardInterrupt:
            self.outcome.interrupted = True
            self.outcome.running_at_interrupt = list(self.running)
            self.stop_running()
        self.outcome.wall_seconds = time.perf_counter() - start
        started = {r.stage.name for r in self.outcome.runs}
        self.outcome.not_run = [n for n in self.stages if n not in started]
        return self.outcome

    def stop_running(self, grace: float = 10.0) -> None:
        """After Ctrl-C. In a terminal the signal reached the stages too (one process group) and they
        stop on their own, a training keeping its checkpoint. A stage still running after `grace`
        seconds was not signalled (a supervisor or an IDE signalled this process alone): its process
        tree gets SIGINT (dvc itself ignores it while its command runs), then, `grace` later, SIGTERM.
        A second Ctrl-C sends SIGTERM at once."""
        try:
            for signal_to_send in (signal.SIGINT, signal.SIGTERM):
                deadline = time.monotonic() + grace
                for r in list(self.running.values()):
                    try:
                        r.process.wait(timeout=max(0.0, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        signal_tree(r.process.pid, signal_to_send)
        except KeyboardInterrupt:
            for r in self.running.values():
                signal_tree(r.process.pid, signal.SIGTERM)
        for follower in self.followers:  # each ends once its stage has exited and its output is read
            follower.join()

    def show(self, r: StageRun, line: str) -> None:
        """A stage's line on the terminal, prefixed with its name; once the terminal is gone (`fer3d
        repro | head`, a closed pipe) the lines go to the stages' logs only."""
        with self.printing:
            if self.out is None:
                return
            try:
                self.out.write(f"{r.stage.name:<{self.width}} | {line}")
                self.out.flush()
            except (OSError, ValueError):  # BrokenPipeError, or a closed file
                self.out = None

    def launch_ready(self) -> None:
        for stage in ready_stages(self.stages, self.done, {r.stage.name for r in self.outcome.runs}):
            if len(self.running) >= self.jobs:
                return
            self.launch(stage)

    def launch(self, stage: Stage) -> None:
        log = self.log_dir / (stage.name.replace("/", "_").replace(":", "_") + ".log")
        process = subprocess.Popen(
            stage_command(stage.name, self.force),
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        r = StageRun(stage, process, time.perf_counter(), log)
        self.running[stage.name] = r
        self.outcome.runs.append(r)
        self.followers.append(threading.Thread(target=self.follow, args=(r,), daemon=True))
        self.followers[-1].start()

    def follow(self, r: StageRun) -> None:
        try:
            with r.log.open("w", encoding="utf-8") as log:
                for line in r.process.stdout:
                    log.write(line)
                    log.flush()
                    r.skipped = r.skipped or any(mark in line for mark in SKIPPED_MARKS)
                    self.show(r, line)
        finally:  # whatever happened to the output, the scheduler hears that the stage ended
            for _ in r.process.stdout:  # and the stage is never left blocked on a full pipe
                pass
            r.returncode = r.process.wait()
            r.seconds = time.perf_counter() - r.started
            self.finished.put(r)


def signal_tree(pid: int, sig: int) -> None:
    """`sig` to `pid` and every process below it (read from /proc; elsewhere to `pid` alone)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # "pid (comm) state ppid ...": comm may hold spaces and parentheses
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    for member in reversed(tree):  # the command first, then the dvc that waits for it
        with contextlib.suppress(ProcessLookupError, PermissionError):  # ended meanwhile
            os.kill(member, sig)


def summary(outcome: Outcome) -> list[str]:
    """What ran, how long each took, and the wall time against the stages' summed time."""
    ran = [r for r in outcome.runs if r.returncode == 0 and not r.skipped]
    lines = []
    for r in outcome.runs:
        if r.returncode != 0 and r.stage.name in outcome.running_at_interrupt:
            what = f"interrupted; its log: {r.log}"
        elif r.returncode:
            what = f"failed (exit {r.returncode}); its log: {r.log}"
        else:
            what = "up to date" if r.skipped else "ran"
        lines.append(f"{r.stage.name}: {what}, {r.seconds / 60:.1f} min")
    lines += [f"{name}: not run" for name in outcome.not_run]
    total = sum(r.seconds for r in ran)
    lines.append(
        ("interrupted (Ctrl-C): " if outcome.interrupted else "")
        + f"{len(ran)} stage(s) ran, {sum(r.skipped for r in outcome.runs)} up to date, {len(outcome.failed)} failed, "
        f"{len(outcome.not_run)} not run; {outcome.wall_seconds / 60:.1f} min wall clock for "
        f"{total / 60:.1f} min of stage time"
    )
    return lines
