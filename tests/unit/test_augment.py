"""Batch augmentation: exact identities, determinism per seed, and the statistics asked for."""

import math

import pytest
import torch

from fer3d.training.augment import (
    ImageAugment,
    LandmarkAugment,
    flip_images,
    mirror_landmarks,
    mix_batch,
    random_erase,
    rotate_scale,
    rotation_matrices,
    shift,
)

N = 478


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(b: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, 1, 48, 48, generator=gen(seed))


def faces(b: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, N, 3, generator=gen(seed))


def pair_perm(n: int = N, seed: int = 0) -> torch.Tensor:
    """An involutive permutation like a mirror's: random disjoint pairs swapped, a few fixed points."""
    order = torch.randperm(n, generator=gen(seed))
    perm = torch.arange(n)
    a, b = order[: (n - 20) // 2], order[(n - 20) // 2 : n - 20]
    perm[a], perm[b] = b, a
    return perm


def test_flip_twice_is_identity():
    x = images()
    assert torch.equal(flip_images(flip_images(x)), x)
    assert torch.equal(flip_images(x)[..., 0], x[..., -1])


def test_mirror_twice_is_identity_and_swaps_points():
    x, perm = faces(), pair_perm()
    assert torch.equal(perm[perm], torch.arange(N))
    m = mirror_landmarks(x, perm)
    assert torch.equal(mirror_landmarks(m, perm), x)
    i = int((perm != torch.arange(N)).nonzero()[0])
    assert torch.equal(m[:, i], x[:, perm[i]] * torch.tensor([-1.0, 1.0, 1.0]))


def test_image_augment_keeps_shape_dtype_and_changes_content():
    aug = ImageAugment(erase=0.5)
    x = images()
    out = aug(x, gen(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not torch.allclose(out, x)
    half = aug(x.double(), gen(1))
    assert half.dtype == torch.float64


def test_landmark_augment_keeps_shape_and_dtype():
    aug = LandmarkAugment(pair_perm())
    x = faces()
    out = aug(x, gen(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not torch.allclose(out, x)


@pytest.mark.parametrize(
    "make, data", [(lambda: ImageAugment(erase=0.5), images), (lambda: LandmarkAugment(pair_perm()), faces)]
)
def test_same_seed_same_batch_different_seed_different(make, data):
    aug, x = make(), data()
    assert torch.equal(aug(x, gen(5)), aug(x, gen(5)))
    assert not torch.allclose(aug(x, gen(5)), aug(x, gen(6)))


def test_per_sample_choices_differ_within_a_batch():
    x = images(1).expand(16, -1, -1, -1).contiguous()
    out = ImageAugment(flip=False, degrees=0, scale=(1, 1))(x, gen(0))
    assert len({tuple(o.flatten()[:200].tolist()) for o in out}) > 4  # different shifts per sample


def test_shift_moves_pixels_without_changing_them():
    x = images(2)
    pad = 4
    offsets = torch.tensor([[pad, pad], [pad + 3, pad - 2]])  # identity; down 3 and left 2 in reverse
    out = shift(x, pad, offsets=offsets)
    assert torch.equal(out[0], x[0])
    # offset (dy, dx) crops from padded[dy:dy+48, dx:dx+48], i.e. the image moved up by 3, right by 2
    assert torch.equal(out[1, :, : 48 - 3, 2:], x[1, :, 3:, : 48 - 2])


def test_random_shift_stays_within_pad():
    x = images(16)
    out = ImageAugment(flip=False, pad=2, degrees=0, scale=(1, 1))(x, gen(3))
    for o, i in zip(out, x):
        found = any(
            torch.equal(o[:, 4:-4, 4:-4], i[:, 4 + dy : 44 + dy, 4 + dx : 44 + dx])
            for dy in range(-2, 3)
            for dx in range(-2, 3)
        )
        assert found


def test_zero_rotation_unit_scale_is_identity():
    x = images()
    out = rotate_scale(x, torch.zeros(8), torch.ones(8))
    assert torch.allclose(out, x, atol=1e-5)
    aug = ImageAugment(flip=False, pad=0, degrees=0, scale=(1, 1))
    assert torch.equal(aug(x, gen(0)), x)


def test_rotation_by_90_degrees_matches_rot90():
    x = images(2)
    out = rotate_scale(x, torch.full((2,), math.pi / 2), torch.ones(2))
    # a square image rotated a quarter turn about its centre is an exact pixel permutation
    assert torch.allclose(out, x.rot90(1, (2, 3)), atol=1e-4) or torch.allclose(out, x.rot90(-1, (2, 3)), atol=1e-4)


def test_random_erase_blanks_rectangles():
    x = images(16) + 10  # nowhere zero before erasing
    out = random_erase(x, 1.0, gen(0))
    zero = out == 0
    assert zero.any(dim=(1, 2, 3)).all()
    for z in zero[:, 0]:
        rows, cols = z.any(1).nonzero().flatten(), z.any(0).nonzero().flatten()
        assert z[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()  # one full rectangle
        assert 0.01 <= z.float().mean() <= 0.3
    assert torch.equal(random_erase(x, 0.0, gen(0)), x)


def test_jitter_statistics():
    x = faces(64)
    aug = LandmarkAugment(pair_perm(), flip=False, jitter=0.01, degrees=0, scale=(1, 1))
    noise = aug(x, gen(0)) - x
    assert abs(noise.std().item() - 0.01) < 0.0005
    assert abs(noise.mean().item()) < 0.0005


def test_landmark_rotation_and_scale_keep_shape_of_face():
    x = faces(16)
    aug = LandmarkAugment(pair_perm(), flip=False, jitter=0.0, degrees=10, scale=(0.95, 1.05))
    out = aug(x, gen(0))
    # a rotation and a zoom: pairwise distances all scale by the same factor, within the range
    ratio = torch.cdist(out, out)[:, 0, 1:] / torch.cdist(x, x)[:, 0, 1:]
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-4)
    assert ((ratio > 0.95 - 1e-4) & (ratio < 1.05 + 1e-4)).all()
    assert not torch.allclose(out, x, atol=1e-3)


def test_rotation_matrices_are_rotations():
    r = rotation_matrices(torch.tensor([0.3, -0.1]), torch.tensor([0.2, 0.0]))
    assert torch.allclose(r @ r.transpose(1, 2), torch.eye(3).expand(2, 3, 3), atol=1e-6)
    assert torch.allclose(torch.linalg.det(r), torch.ones(2))
    # yaw keeps the vertical coordinate, roll keeps depth
    assert torch.allclose(rotation_matrices(torch.tensor([0.3]), torch.tensor([0.0]))[0, 1], torch.tensor([0.0, 1, 0]))
    assert torch.allclose(rotation_matrices(torch.tensor([0.0]), torch.tensor([0.3]))[0, 2], torch.tensor([0.0, 0, 1]))


def test_landmark_flip_is_all_or_nothing_per_face():
    x, perm = faces(32), pair_perm()
    out = LandmarkAugment(perm, flip=True, jitter=0.0, degrees=0, scale=(1, 1))(x, gen(0))
    same = (out == x).flatten(1).all(1)
    mirrored = (out == mirror_landmarks(x, perm)).flatten(1).all(1)
    assert (same | mirrored).all() and same.any() and mirrored.any()


def test_image_flip_is_all_or_nothing_per_image():
    x = images(32)
    out = ImageAugment(flip=True, pad=0, degrees=0, scale=(1, 1))(x, gen(0))
    same = (out == x).flatten(1).all(1)
    flipped = (out == flip_images(x)).flatten(1).all(1)
    assert (same | flipped).all() and same.any() and flipped.any()


def test_bad_arguments():
    with pytest.raises(ValueError, match="permutation"):
        LandmarkAugment(torch.zeros(N, dtype=torch.long))
    with pytest.raises(ValueError, match="scale"):
        ImageAugment(scale=(1.2, 0.9))
    with pytest.raises(ValueError):
        LandmarkAugment(pair_perm())(faces()[:, :10])


def test_channels_last_batches_stay_channels_last():
    x = torch.randn(4, 3, 48, 48).contiguous(memory_format=torch.channels_last)
    out = ImageAugment()(x, gen(0))
    assert out.is_contiguous(memory_format=torch.channels_last)


def one_hot(labels: list[int], classes: int = 4) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(labels), classes).float()


def test_mixup_blends_inputs_and_labels_by_the_same_weight():
    # inputs that *are* their labels: whatever mixup does to one it must do to the other
    target = one_hot([0, 1, 2, 3, 1, 0])
    x, mixed = mix_batch(target.clone(), target, mixup=0.4, cutmix=0, generator=gen(1))
    assert torch.allclose(x, mixed) and torch.allclose(mixed.sum(1), torch.ones(6))
    assert not torch.equal(mixed, target)  # a pairing and a weight were drawn
    again, _ = mix_batch(target.clone(), target, mixup=0.4, cutmix=0, generator=gen(1))
    other, _ = mix_batch(target.clone(), target, mixup=0.4, cutmix=0, generator=gen(2))
    assert torch.equal(x, again) and not torch.equal(x, other)


def test_cutmix_label_weight_is_the_area_really_pasted():
    # image i is its one-hot label painted over every pixel (one channel per class), so the pixel
    # mean of a cut-mixed image is exactly the label mix it should get, boxes clipped at the edge too
    target = one_hot([0, 1, 2, 3, 2, 1, 0, 3])
    for seed in range(20):
        x = target[:, :, None, None].expand(8, 4, 12, 12).clone()
        mixed_x, mixed = mix_batch(x, target, mixup=0, cutmix=1.0, generator=gen(seed))
        assert torch.allclose(mixed_x.mean(dim=(2, 3)), mixed, atol=1e-6), seed
        assert set(mixed_x.unique().tolist()) <= {0.0, 1.0}  # pasted, not blended


def test_with_both_on_each_batch_takes_one_of_them():
    target = one_hot([0, 1, 2, 3])
    kinds = set()
    for seed in range(16):
        x = target[:, :, None, None].expand(4, 4, 6, 6).clone()
        mixed_x, _ = mix_batch(x, target, mixup=0.4, cutmix=1.0, generator=gen(seed))
        kinds.add("cutmix" if set(mixed_x.unique().tolist()) <= {0.0, 1.0} else "mixup")
    assert kinds == {"cutmix", "mixup"}


def test_mix_batch_refuses_what_it_cannot_mix():
    target = one_hot([0, 1])
    with pytest.raises(ValueError, match="one of them > 0"):
        mix_batch(torch.zeros(2, 3), target, 0, 0, gen(0))
    with pytest.raises(ValueError, match="CutMix needs"):
        mix_batch(torch.zeros(2, 5, 3), target, 0, 1.0, gen(0))
    with pytest.raises(ValueError, match=r"\(B, C\) target probabilities for B=3"):
        mix_batch(torch.zeros(3, 1, 4, 4), target, 0.2, 0, gen(0))
