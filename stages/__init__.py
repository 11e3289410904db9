"""One short script per DVC stage; run as `python -m stages.<name>` from the project root.

Importing the package tunes glibc's allocator for the stage's process before torch or numpy
allocate anything (fer3d.allocator: a training step's freed activations are reused instead of
page-faulted in again; every output stays bit for bit)."""

from fer3d.allocator import keep_freed_memory

keep_freed_memory()
