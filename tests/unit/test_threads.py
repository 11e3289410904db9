"""The scoring stages' fixed CPU thread count (fer3d.inference.threads): whatever OMP_NUM_THREADS a
runner such as `fer3d repro -j N` sets, a fixed count gives torch that many threads."""

import os
import subprocess
import sys

import pytest
import torch

from fer3d.inference.threads import fix_cpu_threads

SCRIPT = """
import torch
from fer3d.inference.threads import fix_cpu_threads
print(fix_cpu_threads({threads}), torch.get_num_threads())
"""


def threads_seen(omp: int, threads: int) -> list[str]:
    """(returned count, torch's thread count) of a fresh process started with OMP_NUM_THREADS=omp."""
    env = {**os.environ, "OMP_NUM_THREADS": str(omp)}
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(threads=threads)], env=env, capture_output=True, text=True, check=True
    )
    return run.stdout.split()


def test_a_fixed_count_overrides_what_the_runner_set():
    assert threads_seen(omp=1, threads=2) == ["2", "2"]
    assert threads_seen(omp=3, threads=2) == ["2", "2"]


def test_zero_leaves_the_default_and_onnxruntime_its_own():
    assert threads_seen(omp=1, threads=0) == ["None", "1"]


def test_a_negative_count_is_an_error_that_says_what_was_expected():
    before = torch.get_num_threads()
    with pytest.raises(ValueError, match=r"thread count must be >= 0 \(0: all cores\), found -1"):
        fix_cpu_threads(-1)
    assert torch.get_num_threads() == before
