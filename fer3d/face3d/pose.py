"""Head pose (yaw, pitch, roll in degrees) from FaceMesh's 478 points: the rotation of the
Procrustes fit of a frontal reference face onto the face.

The reference is the training set's mean face (every 3D model file keeps it), turned so that its
left/right symmetry plane is the x = 0 plane and made exactly symmetric. Zero yaw and roll are
therefore "as symmetric as the face allows", and zero pitch is the average FER2013 face's tilt.

Axes are the image's: x right, y down, z away from the camera. Signs:
- yaw > 0: the face turns towards the image's right (the subject's left);
- pitch > 0: the face tilts up;
- roll > 0: the face leans clockwise on screen (the eye on the image's right is lower) — the same
  sign as fer3d.app.faces.eye_angle, so a crop's roll plus the angle it was levelled by is the
  roll in the photo.
A mirrored face has the negated yaw and roll and the same pitch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import center_scale, rotations_onto

POSE_NAMES = ("yaw", "pitch", "roll")
_MIRROR_X = np.array([-1.0, 1.0, 1.0])


@dataclass(frozen=True)
class FrontalFace:
    """A unit-RMS, centred reference face (478,3) symmetric about x = 0."""

    points: np.ndarray

    @classmethod
    def from_mean_face(cls, mean_face: np.ndarray, mirror_perm: np.ndarray) -> FrontalFace:
        """Turn the mean face so that each left/right point pair differs along x only, then average
        it with its own mirror image so the symmetry is exact."""
        face = center_scale(np.asarray(mean_face, np.float64)).astype(np.float64)
        perm = np.asarray(mirror_perm, np.int64)
        pairs = face - face[perm]  # along the symmetry plane's normal for every pair
        normal = np.linalg.svd(pairs[np.linalg.norm(pairs, axis=1) > 1e-9], full_matrices=False)[2][0]
        normal *= np.sign(normal[0]) or 1.0
        down = np.array([0.0, 1.0, 0.0]) - normal[1] * normal  # image "down", within the plane
        down /= np.linalg.norm(down)
        frame = np.stack([normal, down, np.cross(normal, down)], axis=1)  # columns: new x, y, z
        turned = face @ frame
        symmetric = (turned + (turned * _MIRROR_X)[perm]) / 2
        return cls(center_scale(symmetric).astype(np.float32))

    @classmethod
    def from_model_stats(cls, stats: dict) -> FrontalFace:
        """From a 3D model file's input statistics (its mean face and mirror permutation)."""
        missing = [k for k in ("mean_face", "mirror_perm") if k not in stats]
        if missing:
            raise ValueError(f"the model file's input statistics lack {missing}; head pose needs both")
        return cls.from_mean_face(np.asarray(stats["mean_face"]), np.asarray(stats["mirror_perm"]))


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The rotation (column vectors, image axes) of a head with these angles in degrees:
    Rz(roll) @ Ry(-yaw) @ Rx(-pitch)."""
    a, b, g = np.radians([-pitch, -yaw, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(g), -np.sin(g), 0], [np.sin(g), np.cos(g), 0], [0, 0, 1]])
    return rz @ ry @ rx


def angles_of(rotations: np.ndarray) -> np.ndarray:
    """(N,3,3) rotations (column vectors) → (N,3) yaw, pitch, roll in degrees; inverse of
    rotation_matrix for |yaw| < 90."""
    r = np.asarray(rotations, np.float64)
    b = np.arcsin(np.clip(-r[:, 2, 0], -1.0, 1.0))
    a = np.arctan2(r[:, 2, 1], r[:, 2, 2])
    g = np.arctan2(r[:, 1, 0], r[:, 0, 0])
    return np.degrees(np.stack([-b, -a, g], axis=1))


def head_pose(points: np.ndarray, reference: FrontalFace) -> np.ndarray:
    """(N,478,3) FaceMesh points (crop pixels, FaceMesh's z) → (N,3) yaw, pitch, roll in degrees
    (float32). The Kabsch fit gives R with face @ R ≈ reference, so face ≈ reference @ R.T: R is
    the head's rotation in column-vector form."""
    points = np.asarray(points, np.float32)
    if points.ndim != 3 or points.shape[1:] != reference.points.shape:
        raise ValueError(f"head pose needs (N, {len(reference.points)}, 3) points, found {points.shape}")
    if not len(points):
        return np.zeros((0, 3), np.float32)
    faces = center_scale(points)
    return angles_of(rotations_onto(faces, reference.points)).astype(np.float32)
