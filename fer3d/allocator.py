"""glibc's allocator, told to keep the memory a training step frees for the next step.

glibc serves blocks above its mmap threshold (dynamic, 128 KiB to 32 MiB) with fresh mmaps and
unmaps them on free, and returns the heap's free top to the kernel past its trim threshold, so every
step of a training loop page-faults its megabyte activations in again (165 million minor faults
in the 107-minute `dvc repro` of 2026-12-05). With both thresholds raised, the freed blocks are
reused. Only where tensors live changes, not what is computed, so every output stays bit for bit
(docs/experiments.md, "What we tried": glibc's allocator thresholds).
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Mapping

# mallopt's parameter numbers (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest accepted value on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 1 << 30  # keep up to 1 GiB of freed heap; mallopt takes a C int

# a user's own settings win: glibc reads these at start-up; GLIBC_TUNABLES counts only where it
# names a malloc tunable (it also carries unrelated ones, e.g. glibc.pthread.rseq)
MALLOC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
USER_SETTINGS = (*MALLOC_VARIABLES, "GLIBC_TUNABLES")
MALLOC_TUNABLES = "glibc.malloc."
SWITCH = "FER3D_MALLOC_TUNING"  # 0: leave glibc's defaults (to measure what the tuning saves)


def on_glibc() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def user_set_allocator(env: Mapping[str, str]) -> bool:
    """True where `env` sets glibc's allocator itself."""
    return any(k in env for k in MALLOC_VARIABLES) or MALLOC_TUNABLES in env.get("GLIBC_TUNABLES", "")


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True when they were set.

    Does nothing where the C library is not glibc, where the user set glibc's allocator through
    its environment variables, or with FER3D_MALLOC_TUNING=0."""
    if os.environ.get(SWITCH, "1") == "0" or user_set_allocator(os.environ):
        return False
    if not on_glibc():
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # mallopt returns 1 on success; either call also stops glibc's dynamic threshold adjustment
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
