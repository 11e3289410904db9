"""Head pose from FaceMesh points, on real FER2013 faces: known synthetic rotations of the mean face
are recovered, mirrored crops negate yaw and roll, an in-plane turn of the crop moves the roll."""

import numpy as np
import pytest

from fer3d.face3d import geometry, landmarks
from fer3d.face3d.pose import FrontalFace, head_pose, rotation_matrix
from tests.conftest import requires_data

pytestmark = requires_data
ATTEMPTS = [landmarks.Attempt(24, "gray", 1, False), landmarks.Attempt(36, "gray", 1, True)]


@pytest.fixture(scope="module")
def detector():
    det = landmarks.Detector(0.3)
    yield det
    det.close()


@pytest.fixture(scope="module")
def real_points(fer_small, detector):
    """FaceMesh points of the subset's faces that have a mesh, and their crops."""
    points, crops = [], []
    for crop in fer_small.images[:80]:
        found, _ = detector.crop_landmarks(crop, ATTEMPTS)
        if found is not None:
            points.append(found)
            crops.append(crop)
    assert len(points) >= 60, f"FaceMesh found only {len(points)} of 80 faces"
    return np.stack(points).astype(np.float32), np.stack(crops)


@pytest.fixture(scope="module")
def reference(real_points):
    mean = geometry.mean_face(real_points[0])
    return FrontalFace.from_mean_face(mean, geometry.mirror_permutation(mean)), geometry.mirror_permutation(mean)


def test_reference_is_exactly_symmetric_and_faces_the_camera(reference):
    ref, perm = reference
    p = ref.points
    assert np.allclose((p * [-1, 1, 1])[perm], p, atol=1e-5)
    assert p[1, 2] < p[:, 2].mean()  # the nose tip is nearer the camera (FaceMesh z < 0 is nearer)
    assert p[152, 1] > p[10, 1]  # the chin is below the forehead (image y points down)
    assert head_pose(p[None] * 30 + 7, ref)[0] == pytest.approx([0, 0, 0], abs=1e-3)


@pytest.mark.parametrize("angles", [(25, 0, 0), (0, -15, 0), (0, 0, 12), (30, -20, 15), (-40, 12, -25), (-10, 25, 5)])
def test_known_rotations_of_the_mean_face_are_recovered(reference, angles):
    ref, _ = reference
    rng = np.random.default_rng(0)
    face = ref.points @ rotation_matrix(*angles).T * 40 + [24, 24, 3]  # any scale and position
    noisy = face + rng.normal(0, 0.05, face.shape)  # ~0.1% of the face's size
    assert head_pose(face[None], ref)[0] == pytest.approx(angles, abs=1e-3)
    assert head_pose(noisy[None], ref)[0] == pytest.approx(angles, abs=0.5)


def test_turning_to_the_image_right_is_positive_yaw(reference):
    ref, _ = reference
    nose_x = lambda face: face[1, 0] - face.mean(0)[0]
    turned = ref.points @ rotation_matrix(20, 0, 0).T
    assert nose_x(turned) > nose_x(ref.points) + 0.1  # the nose moved towards the image's right


def test_mirrored_real_crops_negate_yaw_and_roll(real_points, reference, detector):
    ref, _ = reference
    points, crops = real_points
    mirrored, kept = [], []
    for i, crop in enumerate(crops[:40]):
        found, _ = detector.crop_landmarks(np.ascontiguousarray(crop[:, ::-1]), ATTEMPTS)
        if found is not None:
            mirrored.append(found)
            kept.append(i)
    assert len(kept) >= 30
    pose = head_pose(points[kept], ref)
    pose_m = head_pose(np.stack(mirrored).astype(np.float32), ref)
    turned = np.abs(pose[:, 0]) > 10
    assert turned.sum() >= 3, "the subset should hold some turned heads"
    # FaceMesh on a mirrored crop is not exactly the mirror of its points: a few degrees
    assert np.median(np.abs(pose[:, 0] + pose_m[:, 0])) < 2.0
    assert np.median(np.abs(pose[:, 2] + pose_m[:, 2])) < 2.0
    assert np.median(np.abs(pose[:, 1] - pose_m[:, 1])) < 2.0
    assert (np.sign(pose[turned, 0]) == -np.sign(pose_m[turned, 0])).all()


def test_turning_the_crop_in_plane_moves_the_roll(real_points, reference, detector):
    import cv2

    ref, _ = reference
    points, crops = real_points
    deltas = []
    for crop, pts in zip(crops[:20], points[:20]):
        # cv2's positive angle turns the picture counter-clockwise: roll decreases by it
        turn = cv2.getRotationMatrix2D((23.5, 23.5), 15, 1.0)
        found, _ = detector.crop_landmarks(
            cv2.warpAffine(crop, turn, (48, 48), borderMode=cv2.BORDER_REPLICATE), ATTEMPTS
        )
        if found is not None:
            deltas.append(head_pose(found[None].astype(np.float32), ref)[0, 2] - head_pose(pts[None], ref)[0, 2])
    assert len(deltas) >= 12
    assert np.median(deltas) == pytest.approx(-15, abs=2.5)


def test_bad_points_are_refused(reference):
    ref, _ = reference
    with pytest.raises(ValueError, match=r"\(N, 478, 3\) points, found \(2, 468, 3\)"):
        head_pose(np.zeros((2, 468, 3)), ref)
    assert head_pose(np.zeros((0, 478, 3)), ref).shape == (0, 3)
    with pytest.raises(ValueError, match="mirror_perm"):
        FrontalFace.from_model_stats({"mean_face": ref.points.tolist()})
