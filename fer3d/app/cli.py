"""The `fer3d` command.

Adding a subcommand: write fer3d/app/commands/<name>.py with `add_<name>(subparsers)`, which creates
its parser and sets `func=<function taking the parsed args>` with `set_defaults`, and list it in
COMMANDS below.
Import heavy modules (torch, mlflow, dvc) inside the command function so `fer3d --help` stays fast.
A command reports a user mistake by raising one of USER_ERRORS: main prints `fer3d <cmd>: error:
<message>` and exits 1 (FER3D_DEBUG=1 shows the traceback instead). Commands return an exit code.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from fer3d import __version__

from .commands.evaluate_folder import add_evaluate_folder
from .commands.export import add_export
from .commands.gradcam import add_gradcam
from .commands.log_model import add_log_model
from .commands.predict import add_predict
from .commands.remote import add_remote
from .commands.repro import add_repro
from .commands.serve import add_serve
from .commands.viewer import add_viewer

# Exceptions whose message is the whole story (ParamError, RemoteSetupError, ... are ValueErrors).
# OSError: a file system's answer (no such file, no space left, ...) is the story too; FER3D_DEBUG=1 for a trace.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


# -- wiring ---------------------------------------------------------------------------------------
COMMANDS: list[Callable] = [
    add_repro,
    add_remote,
    add_predict,
    add_gradcam,
    add_viewer,
    add_evaluate_folder,
    add_serve,
    add_log_model,
    add_export,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fer3d", description="FER2013: 2D image vs 3D face-mesh emotion models")
    parser.add_argument("--version", action="version", version=f"fer3d {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    where = " ".join(str(part) for part in (args.command, getattr(args, "kind", None)) if part)
    main_thread = threading.current_thread() is threading.main_thread()  # where signal handlers can be set
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None  # `kill`: temp files removed
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as e:
        if os.environ.get("FER3D_DEBUG"):
            raise
        raise SystemExit(f"fer3d {where}: error: {e}") from None
    except KeyboardInterrupt:
        if os.environ.get("FER3D_DEBUG"):
            raise
        print(f"fer3d {where}: interrupted; outputs not finished were not written", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _terminate(signum, _frame) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
