"""fer3d: facial emotion recognition on FER2013, 2D images vs 3D MediaPipe face meshes.

The subpackages follow the pipeline: data (download) → face3d (landmarks, meshes, voxels) →
models + training (train_2d, train_3d) → inference (one Classifier per model file, the fusion)
→ evaluation (evaluate) → reporting (report) → app (the `fer3d` command)."""

__version__ = "0.2.0"


def show_progress() -> bool:
    """Progress bars on, unless FER3D_PROGRESS=0 (CI logs, tests)."""
    import os

    return os.environ.get("FER3D_PROGRESS", "1") != "0"
