"""fer3d.allocator in a fresh process each (glibc's thresholds are per process): a stage's process
serves an 8 MiB block from the heap it keeps, where glibc's default would mmap it anew, and a
user's own allocator settings or FER3D_MALLOC_TUNING=0 leave glibc as it is."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fer3d.allocator import SWITCH, USER_SETTINGS, on_glibc
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(not on_glibc(), reason="glibc's allocator only")

# prints whether the tuning took, then whether an 8 MiB malloc was served by a fresh mmap
PROBE = """
import ctypes, sys
fields = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
class MallInfo2(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in fields]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "stage":
    import stages  # what `python -m stages.<name>` imports first
    from fer3d.allocator import keep_freed_memory
    tuned = keep_freed_memory()
else:
    tuned = None
before = libc.mallinfo2().hblks
block = libc.malloc(8 << 20)
print(tuned, libc.mallinfo2().hblks > before)
libc.free(block)
"""


def probe(mode: str, **env: str) -> tuple[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in (*USER_SETTINGS, SWITCH)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, check=True
    )
    tuned, mmapped = out.stdout.split()
    return tuned, mmapped


def test_glibc_mmaps_a_large_block_by_default():
    assert probe("plain") == ("None", "True")


def test_a_stage_process_serves_large_blocks_from_its_heap():
    assert probe("stage") == ("True", "False")


def test_the_switch_leaves_glibc_as_it_is():
    assert probe("stage", FER3D_MALLOC_TUNING="0") == ("False", "True")


def test_a_users_own_allocator_settings_win():
    # the user asks glibc to mmap everything above 64 KiB; the stage must not undo it
    assert probe("stage", MALLOC_MMAP_THRESHOLD_="65536") == ("False", "True")


def test_glibc_tunables_turn_the_tuning_off_only_for_malloc():
    # GLIBC_TUNABLES also carries tunables that have nothing to do with malloc
    assert probe("stage", GLIBC_TUNABLES="glibc.pthread.rseq=1") == ("True", "False")
    assert probe("stage", GLIBC_TUNABLES="glibc.pthread.rseq=1:glibc.malloc.mmap_threshold=65536") == ("False", "True")
