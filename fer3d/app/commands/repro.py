"""`fer3d repro`: the pipeline with independent stages side by side (see fer3d.app.repro)."""

from __future__ import annotations

import sys
from pathlib import Path


def add_repro(subparsers) -> None:
    p = subparsers.add_parser(
        "repro",
        help="dvc repro, with the stages that do not depend on each other run side by side",
        description="Run the DVC pipeline like `dvc repro`, but start every stage as soon as the stages it reads "
        "from are done, up to --jobs at a time, the longest first. DVC still decides what is up to date and "
        "writes dvc.lock. Each stage's output is shown prefixed with its name and kept in .dvc/tmp/repro/.",
    )
    p.add_argument("targets", nargs="*", metavar="STAGE", help="stages (or groups such as train_2d); default: all")
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=0,
        help="stages at a time (default 0: the cores this process may use / params train.threads)",
    )
    p.add_argument("-f", "--force", action="store_true", help="run every stage even when it is up to date")
    p.set_defaults(func=cmd_repro)


def cmd_repro(args) -> int:
    from fer3d import params
    from fer3d.app import repro
    from fer3d.config import repo_root

    root = Path(repo_root())
    if not (root / "dvc.yaml").is_file():
        raise FileNotFoundError(f"no dvc.yaml in {root}: run fer3d repro in the project folder")
    p = params.load(root / "params.yaml") if (root / "params.yaml").is_file() else {}
    threads = params.get(p, "train.threads", int) if "train" in p else None
    jobs = args.jobs or repro.default_jobs(threads)
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1 (or 0: cores / train.threads), found {args.jobs}")
    warning = repro.oversubscription_warning(jobs, threads, repro.cores())
    if warning:
        print(warning, file=sys.stderr)
    stages = repro.pipeline_stages(root, args.targets)
    notice = repro.fp32_notice((p.get("train") or {}).get("precision"), str(p.get("device", "auto")), stages)
    if notice:
        print(notice, file=sys.stderr)
    print(f"fer3d repro: {len(stages)} stage(s), up to {jobs} at a time")
    outcome = repro.run(root, stages, jobs, force=args.force)
    for line in repro.summary(outcome):
        print(line)
    if outcome.interrupted:
        return 130
    return 1 if outcome.failed else 0
