"""Face geometry on batches of landmarks (N,478,3): normalisation, Procrustes alignment to a mean
face, and the left/right mirror permutation. All vectorised; no per-point Python loops."""

from __future__ import annotations

import numpy as np

ALIGNMENTS = ("none", "center", "procrustes")


def center_scale(points: np.ndarray) -> np.ndarray:
    """Translate each face to its centroid and scale it to unit RMS radius (float32)."""
    pts = np.asarray(points, np.float32)
    pts = pts - pts.mean(axis=-2, keepdims=True)
    rms = np.sqrt((pts**2).sum(-1).mean(-1))[..., None, None]
    return pts / np.where(rms > 0, rms, 1)


def rotations_onto(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per face, the proper rotation R (3x3) minimising ||points @ R - reference|| (Kabsch, batched
    SVD); points and reference must already be centred."""
    cov = np.einsum("npi,pj->nij", points.astype(np.float64), reference.astype(np.float64))
    u, _, vt = np.linalg.svd(cov)
    # flip the last axis where needed so R is a rotation, never a reflection (a mirrored face
    # must stay mirrored: left/right matters for the mirror augmentation)
    d = np.sign(np.linalg.det(u @ vt))
    d[d == 0] = 1
    u[:, :, -1] *= d[:, None]
    return (u @ vt).astype(np.float32)


def procrustes_align(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Centre, scale to unit RMS and rotate each face onto `reference` (itself unit RMS)."""
    pts = center_scale(points)
    return np.einsum("npi,nij->npj", pts, rotations_onto(pts, reference))


def mean_face(points: np.ndarray, iterations: int = 5) -> np.ndarray:
    """Generalised Procrustes mean of faces (N,478,3): unit RMS, centred. The starting reference
    is the plain mean of the centred faces, so the result keeps the crops' upright, frontal pose."""
    pts = center_scale(points)
    reference = center_scale(pts.mean(0))
    for _ in range(iterations):
        aligned = np.einsum("npi,nij->npj", pts, rotations_onto(pts, reference))
        reference = center_scale(aligned.mean(0))
    return reference


def normalise(points: np.ndarray, align: str, reference: np.ndarray | None = None) -> np.ndarray:
    """Faces in the frame the models and voxels use: `none` keeps crop pixels (centred on the
    crop), `center` centres and scales, `procrustes` also rotates onto the reference face."""
    if align == "none":
        return np.asarray(points, np.float32) - np.array([24, 24, 0], np.float32)
    if align == "center":
        return center_scale(points)
    if align == "procrustes":
        if reference is None:
            raise ValueError("procrustes alignment needs a reference (mean) face")
        return procrustes_align(points, reference)
    raise ValueError(f"alignment must be one of {ALIGNMENTS}, found {align!r}")


def mirror_permutation(face: np.ndarray) -> np.ndarray:
    """Index permutation p such that mirroring a face left↔right is `x → -x` followed by
    `points[p]`: found by reflecting the (upright, frontal) mean face and matching its points
    one-to-one to the face's (Hungarian assignment); made involutive (pairs and fixed points)."""
    from scipy.optimize import linear_sum_assignment

    face = center_scale(face)
    mirrored = face * np.array([-1, 1, 1], np.float32)
    perm = np.arange(len(face))
    for _ in range(2):
        # match points one-to-one, then correct the small yaw/roll of the mean face by aligning the
        # reflection onto the face through the matches found, and match again
        cost = ((face[:, None, :] - mirrored[None, :, :]) ** 2).sum(-1)
        rows, cols = linear_sum_assignment(cost)
        perm = np.empty(len(face), np.int64)
        perm[rows] = cols
        mirrored = mirrored @ rotations_onto(mirrored[perm][None], face)[0]
    # enforce involution (a↔b pairs); the assignment is symmetric up to ties, resolve by keeping
    # pairs in which both points chose each other and fixing the rest in place
    bad = perm[perm] != np.arange(len(perm))
    perm[bad] = np.flatnonzero(bad)
    return perm
