"""The shift suite on real FER2013 faces: each shift does what its name says (checked against an
independent construction or a measurable property), deterministically; bad suite entries are
refused by name; and the training augmentation's photometric jitter matches the suite's shifts."""

import cv2
import numpy as np
import pytest
import torch

from fer3d.evaluation import shifts
from fer3d.training.augment import ImageAugment, gaussian_blur


@pytest.fixture(scope="module")
def faces(fer_small) -> np.ndarray:
    return fer_small.images[:48]


def sharpness(images: np.ndarray) -> float:
    """Mean variance of the Laplacian: fine detail."""
    return float(np.mean([cv2.Laplacian(i.astype(np.float64), cv2.CV_64F).var() for i in images]))


def test_default_suite_parses_and_names_round_trip():
    suite = shifts.parse_suite(list(shifts.DEFAULT_SUITE))
    assert [s.name for s in suite] == list(shifts.DEFAULT_SUITE)
    assert shifts.Shift.parse(" blur : 1.0 ").name == "blur:1"


@pytest.mark.parametrize(
    "items, message",
    [
        (["fog:1"], "unknown shift 'fog'"),
        (["blur"], "expected 'kind:value'"),
        (["blur:x"], "must be a number, found 'x'"),
        (["zoom:0"], "zoom must be in (0.25, 4]"),
        (["gamma:1", "gamma:1.0"], "listed twice"),
        ([], "non-empty list"),
        ("blur:1", "non-empty list"),
    ],
)
def test_bad_suites_are_refused_by_name(items, message):
    with pytest.raises(ValueError, match="params.yaml: shifts.suite") as e:
        shifts.parse_suite(items, "params.yaml: shifts.suite")
    assert message in str(e.value)


def test_splits_param():
    assert shifts.parse_splits(["val", "test"]) == {"test": 2, "val": 1}
    assert shifts.parse_splits(["test"]) == {"test": 2}
    for bad in (["train"], [], "test", ["test", "test"]):
        with pytest.raises(ValueError, match="params.yaml: shifts.splits"):
            shifts.parse_splits(bad, "params.yaml: shifts.splits")


def test_every_shift_is_deterministic_and_keeps_shape(faces):
    for shift in shifts.parse_suite(list(shifts.DEFAULT_SUITE)):
        out = shift(faces)
        assert out.shape == faces.shape and out.dtype == np.uint8
        assert np.array_equal(out, shift(faces)), shift.name
        assert not np.array_equal(out, faces), shift.name
    with pytest.raises(ValueError, match="expects \\(N, H, W\\) uint8"):
        shifts.Shift.parse("gamma:2")(faces.astype(np.float32))


def test_zoom_is_a_centre_crop_resized(faces):
    """zoom:0.5 = the central 24x24 crop scaled to 48x48; zoom:2 puts the whole face, halved, in the
    central 24x24 (the same bilinear sampling; the outermost pixels differ by the border rule)."""
    tighter = shifts.Shift.parse("zoom:0.5")(faces)
    looser = shifts.Shift.parse("zoom:2")(faces)
    for img, t, lo in zip(faces, tighter, looser):
        crop = cv2.resize(img[12:36, 12:36], (48, 48), interpolation=cv2.INTER_LINEAR)
        assert np.abs(t[2:46, 2:46].astype(int) - crop[2:46, 2:46]).max() <= 1
        half = cv2.resize(img, (24, 24), interpolation=cv2.INTER_LINEAR)
        assert np.abs(lo[12:36, 12:36].astype(int) - half).max() <= 1


def test_photometric_shifts(faces):
    x = faces.astype(np.float64)
    bright, dark = shifts.Shift.parse("gamma:0.6")(faces), shifts.Shift.parse("gamma:1.6")(faces)
    assert np.abs(bright - 255 * (x / 255) ** 0.6).max() <= 0.5
    assert bright.mean() > faces.mean() > dark.mean()
    flat = shifts.Shift.parse("contrast:0.6")(faces).astype(np.float64)
    # std shrinks to 0.6x about each image's own mean (rounding to uint8 moves it by < 0.5)
    assert np.allclose(flat.std(axis=(1, 2)), 0.6 * x.std(axis=(1, 2)), atol=0.5)
    assert np.allclose(flat.mean(axis=(1, 2)), x.mean(axis=(1, 2)), atol=0.5)


def test_blur_and_unsharp_move_sharpness_opposite_ways(faces):
    blurred = shifts.Shift.parse("blur:1")(faces)
    reference = np.stack([cv2.GaussianBlur(i, (0, 0), 1.0) for i in faces])
    assert np.abs(blurred.astype(int) - reference).max() <= 1
    assert (
        sharpness(blurred)
        < 0.5 * sharpness(faces)
        < sharpness(faces)
        < sharpness(shifts.Shift.parse("unsharp:1")(faces))
    )


def test_rotation_alternates_sign(faces):
    """Row 0 turns +d and row 1 -d: for a face and its mirror image the results mirror each other."""
    pair = np.stack([faces[0], faces[0][:, ::-1]])
    out = shifts.Shift.parse("rotate:10")(pair)
    mirrored = np.abs(out[1].astype(int) - out[0][:, ::-1])
    assert mirrored.max() <= 3 and mirrored.mean() < 0.2  # cv2 samples in 1/32 px fixed point
    assert np.abs(out[0].astype(int) - faces[0]).mean() > 5


def test_rotation_direction_follows_the_dataset_row_not_the_batch(faces):
    """The FaceMesh points are found on one subset's shifted crops (shift_landmarks) and the 2D models
    score another (evaluate_shifts, minus the rows a label set drops): an image turns one way in both."""
    rotate = shifts.Shift.parse("rotate:10")
    rows = np.arange(100, 100 + len(faces))
    whole = rotate(faces, rows)
    assert np.array_equal(rotate(faces[1::3], rows[1::3]), whole[1::3])
    assert np.array_equal(rotate(faces, rows - 100), rotate(faces))  # default: the position
    assert not np.array_equal(rotate(faces[1:], rows[1:]), rotate(faces[1:]))  # odd offset: positions flip it
    with pytest.raises(ValueError, match="one row per image expected"):
        rotate(faces, rows[:-1])


# ------------------------------------------------------------------ training augmentation agrees


def standardise(images: np.ndarray, stats: dict) -> torch.Tensor:
    return (torch.from_numpy(images).float()[:, None] / 255 - stats["mean"]) / stats["std"]


def raw(x: torch.Tensor, stats: dict) -> np.ndarray:
    return ((x[:, 0] * stats["std"] + stats["mean"]) * 255).numpy()


@pytest.mark.parametrize(
    "options, shift",
    [
        ({"gamma": (0.6, 0.6)}, "gamma:0.6"),
        ({"contrast": (0.6, 0.6)}, "contrast:0.6"),
        ({"blur": 1.0, "blur_sigma": (1, 1)}, "blur:1"),
    ],
)
def test_photometric_jitter_matches_the_shift_suite(faces, options, shift):
    """Fixed to one value, each photometric jitter of training is the suite's shift of that value
    (to uint8 rounding): what the models learn to tolerate is what the suite measures."""
    stats = {"mean": 0.5, "std": 0.25}
    aug = ImageAugment(flip=False, pad=0, degrees=0, scale=(1, 1), stats=stats, **options)
    out = raw(aug(standardise(faces, stats), torch.Generator().manual_seed(0)), stats)
    assert np.abs(out - shifts.Shift.parse(shift)(faces)).max() <= 1.0


def test_photometric_jitter_is_seeded_and_needs_stats(faces):
    stats = {"mean": 0.5, "std": 0.25}
    aug = ImageAugment(gamma=(0.6, 1.6), contrast=(0.6, 1.3), blur=0.5, sharpen=0.3, stats=stats)
    x = standardise(faces, stats)
    a, b = aug(x, torch.Generator().manual_seed(3)), aug(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, aug(x, torch.Generator().manual_seed(4)))
    with pytest.raises(ValueError, match="needs the images' stats"):
        ImageAugment(blur=0.5)(x)
    with pytest.raises(ValueError, match="blur must be a probability"):
        ImageAugment(blur=2)


def test_jitter_off_draws_nothing(faces):
    """With the photometric options at their defaults an augmenter draws exactly the random
    numbers it drew before they existed: older recipes reproduce bit for bit."""
    stats = {"mean": 0.5, "std": 0.25}
    x = standardise(faces, stats)
    g_stats, g_plain = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(ImageAugment(stats=stats)(x, g_stats), ImageAugment()(x, g_plain))
    assert torch.equal(g_stats.get_state(), g_plain.get_state())


def test_gaussian_blur_per_image_sigma(faces):
    x = torch.from_numpy(faces[:3]).float()[:, None]
    out = gaussian_blur(x, torch.tensor([0.0, 1.0, 0.5]))
    assert torch.equal(out[0], x[0])  # sigma 0: untouched
    for i, sigma in ((1, 1.0), (2, 0.5)):
        ref = cv2.GaussianBlur(faces[i].astype(np.float32), (0, 0), sigma)
        assert np.abs(out[i, 0].numpy() - ref).max() < 0.1  # of 255: cv2 cuts the kernel at 4 sigma, we at 3
