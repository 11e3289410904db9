"""One CPU thread count for the stages that score models, as for the trainings (params train.threads).

The count changes the last bits of float sums: on one CPU, landmark_mlp's and mesh_gnn's
probabilities differ between 1 and 2 threads (by up to 5e-7). The evaluate stage fits the fusion
weights on those probabilities, so without a fixed count models/fusion.json would depend on how many
stages `fer3d repro -j N` runs beside it (it gives each stage cores/N threads) and on the machine's
core count, not only on the models."""

from __future__ import annotations


def fix_cpu_threads(threads: int) -> int | None:
    """torch's intra-op CPU threads = `threads` (0: leave torch's default, all cores). Returns the count
    to give onnxruntime sessions (None: theirs by default). Call before any torch work."""
    if threads < 0:
        raise ValueError(f"a thread count must be >= 0 (0: all cores), found {threads}")
    if not threads:
        return None
    import torch

    torch.set_num_threads(threads)
    return threads
