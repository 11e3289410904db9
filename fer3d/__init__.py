"""fer3d: facial emotion recognition on FER2013, 2D images vs 3D MediaPipe face meshes."""

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)
# FER2013's `Usage` column → the role each split plays in the protocol.
SPLITS = ("train", "val", "test")
USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}

__version__ = "0.1.0"


def show_progress() -> bool:
    """Progress bars on, unless FER3D_PROGRESS=0 (CI logs, tests)."""
    import os

    return os.environ.get("FER3D_PROGRESS", "1") != "0"
