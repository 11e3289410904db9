"""`fer3d viewer`'s parts: a photo's faces with their FaceMesh points, found as the landmarks stage
finds them (the settings come from a 3D model file), and the mesh triangles to draw them with."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..face3d.landmarks import Detector
from ..face3d.mesh import mesh_edges, mesh_triangles
from ..inference import MeshSettings
from .faces import Face, face_finder, faces_in


def triangles() -> np.ndarray:
    """MediaPipe's tesselation as true triangles (irises are rings only)."""
    edges = mesh_edges()
    return mesh_triangles(edges[edges.max(1) < 468])


def face_meshes(
    path: Path, settings: MeshSettings, crops: bool = False, align: bool = True
) -> list[tuple[Face, np.ndarray | None]]:
    """The faces of one image and each one's 478 crop-frame landmarks (None where FaceMesh finds none)."""
    with face_finder(crops) as finder:
        faces, _ = faces_in(path, finder, crops, align)
    detector = Detector(settings.min_detection_confidence)
    try:
        return [
            (face, detector.crop_landmarks(face.crop, settings.attempts, settings.mirror_average)[0]) for face in faces
        ]
    finally:
        detector.close()
