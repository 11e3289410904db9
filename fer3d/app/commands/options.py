"""Options several commands share."""

from __future__ import annotations

import argparse


def model_names(value: str | None, option: str = "--models", example: str = "cnn,resnet,fusion") -> list[str] | None:
    """--models "a, b,fusion" -> ["a", "b", "fusion"] (each once); None (every model of the folder)
    when not given; ValueError when given but naming none (",": not "every model", nor "no model"),
    or naming a path instead of a model (its file is <name>.pt in --models-dir)."""
    if value is None:
        return None
    names = list(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    if not names:
        raise ValueError(f"{option} {value!r} names no model; give comma-separated names, e.g. {example}")
    for name in names:
        if "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(
                f"{option}: {name!r} is a path; give a model's name (its file is <name>.pt in --models-dir)"
            )
    return names


def add_face_options(p, align_help: str = "level the eyes before cropping (default: on)") -> None:
    """--models-dir, --crops and --align: where the model files are and how faces are cut."""
    p.add_argument("--models-dir", default="models", help="folder of <name>.pt files (default: models)")
    p.add_argument(
        "--crops", action="store_true", help="inputs are face crops already: no detection (48x48 images always are)"
    )
    p.add_argument("--align", action=argparse.BooleanOptionalAction, default=True, help=align_help)


def check_output(value: str | None, option: str = "--out", folder: bool = False) -> None:
    """ValueError naming the option when the output cannot be written there, before the work that
    makes it rather than after (None or '-': no output)."""
    from fer3d.io import unwritable_reason

    if value is None or value == "-":
        return
    reason = unwritable_reason(value, folder)
    if reason:
        raise ValueError(f"{option} {value}{reason}")


def device_option(value: str) -> str:
    """--device: auto, cpu, cuda or cuda:N that this machine has (argparse type: the error names the option)."""
    from fer3d.device import resolve_device

    try:
        return str(resolve_device(value, where="--device"))  # auto: cuda where there is one, else cpu
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--device ")) from None
