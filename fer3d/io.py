"""Atomic file output: every artifact is written to a temp file beside its target and renamed,
so an interrupted stage never leaves a half-written file that DVC or a later stage could trust."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path in the target's directory; rename it onto `target` only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; artifacts get the usual mode
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


NAME_MAX = 255  # bytes in one file name on Linux (ext4, xfs, btrfs, tmpfs) and macOS (APFS)


def unwritable_reason(target: str | os.PathLike, folder: bool = False) -> str | None:
    """Why atomic_path could not write `target` (a file, or with folder=True a folder files go into),
    checked before the work that makes the output: a name longer than the file system allows (with
    atomic_path's temp-name additions), a folder where the file goes, a file where a parent folder
    goes, a parent this user cannot write; the reason, with its separator, reads after the path
    ("out.json is a folder; ...", "out/x.json: out is a file, ..."). None when nothing is wrong that can
    be seen beforehand."""
    target = Path(target)
    for part in target.parts:
        extra = 0 if folder or part != target.name else len("..") + 8 + len(os.fsencode(target.suffix))
        size = len(os.fsencode(part))
        if size + extra > NAME_MAX:
            return f": the name {part[:24]}... is {size} bytes; names here hold at most {NAME_MAX - extra}"
    if not folder and target.is_dir():
        return " is a folder; give a file name"
    if folder and target.exists() and not target.is_dir():
        return " is a file; give a folder"
    existing = target if folder else target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f": {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f": this user cannot write in {existing}"
    return None


def save_npz(target: str | os.PathLike, compressed: bool = False, **arrays: np.ndarray) -> Path:
    """Like np.savez, but byte-for-byte reproducible: np.savez stamps each member with the current
    time, so identical arrays would get a new DVC hash (and re-run everything downstream)."""
    import zipfile

    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with atomic_path(target, suffix=".npz") as tmp, zipfile.ZipFile(tmp, "w", compression=method) as z:
        for name, value in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            with z.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
    return Path(target)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found; run the stage that writes it (dvc repro)")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def save_json(target: str | os.PathLike, obj: Any) -> Path:
    with atomic_path(target, suffix=".json") as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")
    return Path(target)


def save_text(target: str | os.PathLike, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)


def save_bytes(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot serialise {type(o).__name__} to JSON")
