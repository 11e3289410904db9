"""MediaPipe landmarks, mesh geometry and voxels on real FER2013 faces."""

import numpy as np
import pytest

from fer3d.face3d import facemesh_mirror, geometry, landmarks, mesh
from tests.conftest import requires_data

pytestmark = requires_data
DEFAULT_ATTEMPTS = [
    landmarks.Attempt(24, "gray", 1, False),
    landmarks.Attempt(24, "gray", 4, False),
    landmarks.Attempt(36, "gray", 1, True),
    landmarks.Attempt(0, "gray", 1, False),
]


@pytest.fixture(scope="module")
def extracted(fer_small):
    pts, used = landmarks.extract(
        fer_small.images, DEFAULT_ATTEMPTS, workers=2, min_detection_confidence=0.3, progress=False
    )
    return pts, used


def test_faces_are_found_and_lie_on_the_crop(fer_small, extracted):
    pts, used = extracted
    found = used >= 0
    assert found.mean() >= 0.95, f"found {found.mean():.1%}"
    assert pts.shape == (len(fer_small), 478, 3) and (pts[~found] == 0).all()
    nose_tip = pts[found, 1, :2]
    assert ((nose_tip > 0) & (nose_tip < 48)).all()  # mapped back into the 48x48 frame
    assert ((nose_tip > 8) & (nose_tip < 40)).all(1).mean() > 0.95  # near the centre, bar profiles
    # the subject's right eye (point 33) is on the image's left of the left eye (263)
    assert (pts[found, 33, 0] < pts[found, 263, 0]).mean() > 0.95


def test_parallel_equals_serial(fer_small, extracted):
    pts, used = extracted
    few = slice(0, 20)
    serial_pts, serial_used = landmarks.extract(
        fer_small.images[few], DEFAULT_ATTEMPTS, workers=1, min_detection_confidence=0.3, progress=False
    )
    assert (serial_used == used[few]).all()
    assert np.allclose(serial_pts, pts[few], atol=1e-5)


def test_padding_maps_back_to_the_same_points(fer_small):
    """The same face found through different borders/upscaling lands on the same crop pixels."""
    det = landmarks.Detector(0.3)
    try:
        agree = []
        for image in fer_small.images[:30]:
            a, ia = det.crop_landmarks(image, [landmarks.Attempt(24, "gray", 1, False)])
            b, ib = det.crop_landmarks(image, [landmarks.Attempt(36, "gray", 2, False)])
            if ia == 0 and ib == 0:
                agree.append(np.median(np.linalg.norm(a[:, :2] - b[:, :2], axis=1)))
    finally:
        det.close()
    assert len(agree) >= 20 and np.median(agree) < 1.0, agree


def test_attempt_params_are_checked():
    with pytest.raises(ValueError, match=r"landmarks.attempts\[0\].fill must be one of"):
        landmarks.Attempt.from_param({"pad": 4, "fill": "blue"}, "landmarks.attempts[0]")
    with pytest.raises(ValueError, match="unknown keys \\['padding'\\]"):
        landmarks.Attempt.from_param({"padding": 4}, "landmarks.attempts[1]")
    with pytest.raises(ValueError, match="pad must be an integer >= 0"):
        landmarks.Attempt.from_param({"pad": -1}, "landmarks.attempts[2]")


def test_real_mean_face_mirror_pairs(fer_small, extracted):
    pts, used = extracted
    mean = geometry.mean_face(pts[used >= 0])
    perm = geometry.mirror_permutation(mean)
    # MediaPipe's documented symmetric points: eye corners, mouth corners, iris centres, midline
    for a, b in [(33, 263), (133, 362), (61, 291), (468, 473), (1, 1), (152, 152)]:
        assert perm[a] == b and perm[b] == a
    tess = {tuple(e) for e in mesh.mesh_edges().tolist()}
    mirrored_edges = {tuple(sorted((perm[a], perm[b]))) for a, b in tess}
    assert len(tess & mirrored_edges) / len(tess) > 0.98
    # the package's fixed pairs (used before any mean face exists) are what real faces give
    assert (perm == facemesh_mirror.MIRROR_PERMUTATION).all()


def test_mirror_back_is_an_involution_on_the_crop():
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 48, (478, 3)).astype(np.float32)
    back = landmarks.mirror_back(pts, 48)
    np.testing.assert_allclose(landmarks.mirror_back(back, 48), pts, atol=1e-5)
    # a midline point (nose tip, 1) keeps its index and reflects about the crop's centre line
    assert back[1, 0] == pytest.approx(48 - pts[1, 0]) and back[1, 1:] == pytest.approx(pts[1, 1:])
    # the right eye's outer corner (33) takes the left eye's (263), mirrored
    assert back[33, 0] == pytest.approx(48 - pts[263, 0])


def test_mirror_average_reads_the_mirrored_crop_too(fer_small):
    """The mirrored reading, mirrored back, lands near the plain one (so the pairs and the x flip
    are right); the average is the midpoint of the two; a mirrored image gives the mirror of the
    average (the average is symmetric in its two readings); a face either reading finds counts."""
    det = landmarks.Detector(0.3)
    try:
        gaps, found_plain, found_avg = [], 0, 0
        for image in fer_small.images[:40]:
            plain, used = det.crop_landmarks(image, DEFAULT_ATTEMPTS)
            averaged, avg_used = det.crop_landmarks(image, DEFAULT_ATTEMPTS, mirror_average=True)
            flipped = np.ascontiguousarray(image[:, ::-1])
            mirrored, _ = det.crop_landmarks(flipped, DEFAULT_ATTEMPTS)
            found_plain, found_avg = found_plain + (plain is not None), found_avg + (averaged is not None)
            if plain is None or mirrored is None:
                continue
            back = landmarks.mirror_back(mirrored, 48)
            gaps.append(np.median(np.linalg.norm(plain[:, :2] - back[:, :2], axis=1)))
            assert avg_used == used
            np.testing.assert_allclose(averaged, 0.5 * (plain + back), atol=1e-5)
            of_flipped, _ = det.crop_landmarks(flipped, DEFAULT_ATTEMPTS, mirror_average=True)
            np.testing.assert_allclose(landmarks.mirror_back(of_flipped, 48), averaged, atol=1e-4)
    finally:
        det.close()
    assert len(gaps) >= 30 and np.median(gaps) < 2.0, gaps  # swapped eyes would be ~10 px apart
    assert found_avg >= found_plain
