"""Options several commands share."""

from __future__ import annotations

import argparse


def model_names(value: str | None) -> list[str] | None:
    """--models "a, b,fusion" -> ["a", "b", "fusion"] (each once); None (every model of the folder)
    when not given; ValueError when given but naming none (",": not "every model", nor "no model")."""
    if value is None:
        return None
    names = list(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    if not names:
        raise ValueError(f"--models {value!r} names no model; give comma-separated names, e.g. cnn,resnet,fusion")
    return names


def add_face_options(p, align_help: str = "level the eyes before cropping (default: on)") -> None:
    """--models-dir, --crops and --align: where the model files are and how faces are cut."""
    p.add_argument("--models-dir", default="models", help="folder of <name>.pt files (default: models)")
    p.add_argument(
        "--crops", action="store_true", help="inputs are face crops already: no detection (48x48 images always are)"
    )
    p.add_argument("--align", action=argparse.BooleanOptionalAction, default=True, help=align_help)
