"""What the service shows beside a prediction, per face of one image: each 2D model's Grad-CAM
overlay (a PNG, base64) for the class that model predicts, and the face's FaceMesh points as the
offline 3D viewer page (fer3d.face3d.viewer), coloured by the distance from the mean training face."""

from __future__ import annotations

import base64
import functools

import numpy as np

from ..inference import Predictor
from .faces import FaceFinder, faces_in_image

OVERLAY_SIDE = 192  # px: the 48x48 crop upscaled for the page
NO_3D_MODEL = "no 3D model is loaded (see the server's --models), so no face mesh was looked for"
NO_MESH = "FaceMesh found no face mesh on the 48x48 crop"


@functools.lru_cache(maxsize=1)
def _triangles() -> np.ndarray:
    from .mesh_view import triangles

    return triangles()


def overlay_png(crop: np.ndarray, cam_map: np.ndarray, side: int = OVERLAY_SIDE) -> bytes:
    """The crop with its Grad-CAM heat map blended in (fer3d.reporting.gradcam.overlay), upscaled, as PNG bytes."""
    import cv2

    from ..reporting.gradcam import overlay

    rgb = np.round(overlay(crop, cam_map) * 255).astype(np.uint8)
    big = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_CUBIC)
    ok, png = cv2.imencode(".png", cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("OpenCV could not encode the Grad-CAM overlay as PNG")
    return png.tobytes()


def gradcams(predictor: Predictor, crops: np.ndarray) -> list[dict[str, dict]]:
    """Per face, {2D model: {"emotion", "probability", "png_base64"[, "note"]}}: the Grad-CAM of the
    class the model predicts (with its test-time flip, as /predict reports it)."""
    from ..reporting.gradcam import cams_for_images

    out: list[dict[str, dict]] = [{} for _ in crops]
    for name, classifier in predictor.classifiers.items():
        if classifier.kind != "image":
            continue
        for i, (crop, cam) in enumerate(zip(crops, cams_for_images(classifier, crops))):
            entry = {
                "emotion": predictor.classes[cam.class_index],
                "probability": round(cam.probability, 6),
                "png_base64": base64.b64encode(overlay_png(crop, cam.map)).decode("ascii"),
            }
            if not cam.map.any():
                entry["note"] = "no positive evidence for this class in the last conv layer"
            out[i][name] = entry
    return out


def _mean_face(predictor: Predictor) -> np.ndarray | None:
    for classifier in predictor.classifiers.values():
        if classifier.needs_mesh and "mean_face" in classifier.stats:
            return np.asarray(classifier.stats["mean_face"], np.float32)
    return None


def mesh_pages(predictor: Predictor, crops: np.ndarray) -> list[dict]:
    """Per face, {"html": the viewer page or None, "note": why there is none}. The points are found
    as /predict finds them for the 3D models (the Predictor's FaceMesh settings)."""
    from ..face3d import viewer
    from ..reporting.gradcam import displacement

    if not predictor.needs_mesh:
        return [{"html": None, "note": NO_3D_MODEL} for _ in crops]
    points, has_mesh = predictor.find_meshes(crops)
    mean_face = _mean_face(predictor)
    label = "distance from the mean training face" if mean_face is not None else "none"
    out = []
    for i, found in enumerate(has_mesh):
        if not found:
            out.append({"html": None, "note": NO_MESH})
            continue
        values = displacement(points[i : i + 1], mean_face)[0] if mean_face is not None else None
        # Captions are fixed text, never the upload's name: the page is shown in an iframe.
        page = viewer.mesh_page([(points[i], values, f"face {i}")], _triangles(), f"face {i}: 3D mesh", label)
        out.append({"html": page, "note": None})
    return out


def explain_image(
    image: np.ndarray,
    predictor: Predictor,
    finder: FaceFinder | None,
    name: str = "upload",
    crops: bool = False,
    align: bool = True,
) -> dict:
    """{"file", "image_size", "faces": [{"index", "box", "gradcam", "mesh"}]} for one decoded image;
    its faces are found and cut as predict_image finds them (InputError when there is none)."""
    faces = faces_in_image(image, finder, crops, align, name)
    stack = np.stack([f.crop for f in faces])
    cams = gradcams(predictor, stack)
    meshes = mesh_pages(predictor, stack)
    return {
        "file": name,
        "image_size": [int(image.shape[1]), int(image.shape[0])],
        "faces": [{"index": i, "box": face.box, "gradcam": cams[i], "mesh": meshes[i]} for i, face in enumerate(faces)],
    }
