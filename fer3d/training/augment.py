"""Training-time augmentation of whole batches, in torch, on whatever device the batch is on.

Every random choice is drawn per sample from the `torch.Generator` passed in (on the generator's
own device, then moved), so the same seed gives the same augmented batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from ..models.inputs import flip_images, mirror_landmarks

IMAGE_DIMS = 4  # (B, C, H, W)
LANDMARK_DIMS = 3  # (B, N, 3)


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Uniform [0, 1) numbers from `generator` (its own device), delivered on `device`."""
    where = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=where).to(device)


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=where).to(device)


def _uniform(n: int, lo: float, hi: float, generator, device) -> torch.Tensor:
    return lo + (hi - lo) * _rand((n,), generator, device)


def _check_range(name: str, pair) -> tuple[float, float]:
    lo, hi = (float(v) for v in pair)
    if not 0 < lo <= hi:
        raise ValueError(f"{name} must be a (low, high) pair with 0 < low <= high, got {pair!r}")
    return lo, hi


def _check_perm(mirror_perm) -> torch.Tensor:
    perm = torch.as_tensor(mirror_perm)
    if (
        perm.dim() != 1
        or perm.dtype not in (torch.int32, torch.int64)
        or not torch.equal(perm.sort().values, torch.arange(len(perm), dtype=perm.dtype))
    ):
        raise ValueError("mirror_perm must be a 1-D integer permutation of 0..N-1")
    return perm.long()


class ImageAugment:
    """Photometric jitter, random flip, reflect-pad + crop shift, small rotation/scale and optional
    erasing of standardised (B, C, H, W) images.

    Photometric (on the raw intensities, hence `stats`, the pixel mean/std the batch is standardised
    with; each is off at its default, and an option that is off draws no random numbers, so older
    recipes reproduce bit for bit): gamma: per-image gamma, log-uniform in (low, high); contrast:
    factor about each image's mean, uniform in (low, high); blur: probability of a Gaussian blur
    with sigma uniform in `blur_sigma` px; sharpen: probability of an unsharp mask (sigma 1) with
    amount uniform in (0.5, 1.5). These are what other cameras do to a face (the shift suite).
    Geometric: flip: mirror half the images; pad: shift by up to `pad` px each way (reflect-padded);
    degrees/scale: per-sample rotation in [-degrees, degrees] and zoom in `scale`;
    erase: probability of blanking (to 0, the standardised mean) one random rectangle per image.
    """

    def __init__(
        self,
        flip: bool = True,
        pad: int = 4,
        degrees: float = 10,
        scale=(0.9, 1.1),
        erase: float = 0.0,
        gamma=(1.0, 1.0),
        contrast=(1.0, 1.0),
        blur: float = 0.0,
        blur_sigma=(0.5, 1.5),
        sharpen: float = 0.0,
        stats: dict | None = None,
    ):
        if pad < 0 or int(pad) != pad:
            raise ValueError(f"pad must be an int >= 0, got {pad!r}")
        if degrees < 0:
            raise ValueError(f"degrees must be >= 0, got {degrees!r}")
        for name, p in (("erase", erase), ("blur", blur), ("sharpen", sharpen)):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must be a probability, got {p!r}")
        self.flip, self.pad, self.degrees, self.erase = bool(flip), int(pad), float(degrees), float(erase)
        self.scale = _check_range("scale", scale)
        self.gamma = _check_range("gamma", gamma)
        self.contrast = _check_range("contrast", contrast)
        self.blur_sigma = _check_range("blur_sigma", blur_sigma)
        self.blur, self.sharpen = float(blur), float(sharpen)
        self.stats = stats

    @property
    def photometric(self) -> bool:
        return self.gamma != (1.0, 1.0) or self.contrast != (1.0, 1.0) or self.blur > 0 or self.sharpen > 0

    def __repr__(self) -> str:
        return (
            f"ImageAugment(flip={self.flip}, pad={self.pad}, degrees={self.degrees}, scale={self.scale}, "
            f"erase={self.erase}, gamma={self.gamma}, contrast={self.contrast}, blur={self.blur}, "
            f"blur_sigma={self.blur_sigma}, sharpen={self.sharpen})"
        )

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.dim() != IMAGE_DIMS:
            raise ValueError(f"ImageAugment expects (B, C, H, W), got shape {tuple(x.shape)}")
        channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        b, dev = x.shape[0], x.device
        if self.photometric:
            x = self.jitter_photometric(x, generator)
        if self.flip:
            x = torch.where((_rand((b,), generator, dev) < 0.5)[:, None, None, None], flip_images(x), x)
        if self.pad:
            x = shift(x, self.pad, generator)
        if self.degrees or self.scale != (1.0, 1.0):
            angle = _uniform(b, -self.degrees, self.degrees, generator, dev) * (math.pi / 180)
            zoom = _uniform(b, *self.scale, generator, dev)
            x = rotate_scale(x, angle, zoom)
        if self.erase:
            x = random_erase(x, self.erase, generator)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    def jitter_photometric(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if self.stats is None:
            raise ValueError("ImageAugment: photometric jitter needs the images' stats (pixel mean and std)")
        mean, std = float(self.stats["mean"]), float(self.stats["std"])
        b, dev = x.shape[0], x.device
        raw = (x * std + mean).clamp(0, 1)
        if self.gamma != (1.0, 1.0):
            lo, hi = (math.log(v) for v in self.gamma)
            raw = raw.clamp_min(1e-6) ** torch.exp(_uniform(b, lo, hi, generator, dev))[:, None, None, None]
        if self.contrast != (1.0, 1.0):
            factor = _uniform(b, *self.contrast, generator, dev)[:, None, None, None]
            centre = raw.mean(dim=(1, 2, 3), keepdim=True)
            raw = centre + factor * (raw - centre)
        if self.blur:
            sigma = _uniform(b, *self.blur_sigma, generator, dev) * (_rand((b,), generator, dev) < self.blur)
            raw = gaussian_blur(raw, sigma)
        if self.sharpen:
            amount = _uniform(b, 0.5, 1.5, generator, dev) * (_rand((b,), generator, dev) < self.sharpen)
            raw = raw + amount[:, None, None, None] * (raw - gaussian_blur(raw, torch.ones(b, device=dev)))
        return (raw.clamp(0, 1) - mean) / std


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image of (B, C, H, W) with its own Gaussian `sigma` ((B,), px; 0 leaves it as is),
    edges reflected as cv2's default, so that training blur matches the shift suite's."""
    b, c, h, w = x.shape
    radius = max(1, math.ceil(3 * float(sigma.max()))) if len(sigma) else 1
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    safe = sigma.to(x.dtype).clamp_min(1e-3)[:, None]
    kernel = torch.exp(-0.5 * (offsets[None, :] / safe) ** 2)
    kernel = kernel / kernel.sum(1, keepdim=True)  # sigma ~0 leaves a unit impulse: no blur
    kernel = kernel.repeat_interleave(c, 0)  # (B*C, K), one per depthwise channel
    flat = F.pad(x.reshape(1, b * c, h, w), (radius,) * 4, mode="reflect")
    flat = F.conv2d(flat, kernel[:, None, None, :], groups=b * c)  # along x
    flat = F.conv2d(flat, kernel[:, None, :, None], groups=b * c)  # along y
    return flat.reshape(b, c, h, w)


def shift(
    x: torch.Tensor, pad: int, generator: torch.Generator | None = None, offsets: torch.Tensor | None = None
) -> torch.Tensor:
    """Reflect-pad by `pad` then crop back at per-sample offsets in [0, 2*pad] ((B, 2) as (dy, dx);
    random when not given). Offset (pad, pad) is the identity."""
    b, c, h, w = x.shape
    if offsets is None:
        offsets = (_rand((b, 2), generator, x.device) * (2 * pad + 1)).long().clamp_(max=2 * pad)
    offsets = offsets.to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    rows = offsets[:, 0, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = offsets[:, 1, None] + torch.arange(w, device=x.device)  # (B, W)
    # two gathers instead of a Python loop over the batch
    out = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * pad))
    return out.gather(3, cols[:, None, None, :].expand(b, c, h, w))


def rotate_scale(x: torch.Tensor, angle: torch.Tensor, zoom: torch.Tensor) -> torch.Tensor:
    """Rotate each image by `angle` (radians, (B,)) and zoom by `zoom` ((B,), >1 enlarges) about its centre."""
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    zero = torch.zeros_like(cos)
    # affine_grid maps output to input coordinates, hence the inverse zoom
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # reflection rather than zeros: no black corners the net could learn to key on
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def random_erase(
    x: torch.Tensor, p: float, generator: torch.Generator | None = None, area=(0.02, 0.2), ratio=(0.3, 3.3)
) -> torch.Tensor:
    """With probability p per image, set one random rectangle (area fraction in `area`, aspect
    in `ratio`) to 0."""
    b, _, h, w = x.shape
    dev = x.device
    r = _rand((b, 5), generator, dev)
    frac = area[0] + (area[1] - area[0]) * r[:, 0]
    aspect = torch.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * r[:, 1])
    eh = (torch.sqrt(frac * aspect) * h).round().clamp(1, h)
    ew = (torch.sqrt(frac / aspect) * w).round().clamp(1, w)
    top = (r[:, 2] * (h - eh + 1)).floor()
    left = (r[:, 3] * (w - ew + 1)).floor()
    ys = torch.arange(h, device=dev)[None, :]
    xs = torch.arange(w, device=dev)[None, :]
    in_rows = (ys >= top[:, None]) & (ys < (top + eh)[:, None])  # (B, H)
    in_cols = (xs >= left[:, None]) & (xs < (left + ew)[:, None])  # (B, W)
    mask = in_rows[:, :, None] & in_cols[:, None, :] & (r[:, 4] < p)[:, None, None]
    return x.masked_fill(mask[:, None], 0)


def rotation_matrices(yaw: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) rotations: yaw about the vertical y axis, then roll in the image (x, y) plane."""
    cy, sy, cr, sr = torch.cos(yaw), torch.sin(yaw), torch.cos(roll), torch.sin(roll)
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)
    r_yaw = torch.stack(
        [torch.stack([cy, zero, sy], 1), torch.stack([zero, one, zero], 1), torch.stack([-sy, zero, cy], 1)], 1
    )
    r_roll = torch.stack(
        [torch.stack([cr, -sr, zero], 1), torch.stack([sr, cr, zero], 1), torch.stack([zero, zero, one], 1)], 1
    )
    return r_roll @ r_yaw


class LandmarkAugment:
    """Random mirror, yaw/roll rotation, isotropic scale and Gaussian jitter of (B, N, 3) faces.

    mirror_perm: the left/right point permutation (N,); jitter: noise sigma in the unit-RMS frame;
    degrees: max |yaw| and |roll|; scale: isotropic zoom range.
    """

    def __init__(self, mirror_perm, flip: bool = True, jitter: float = 0.01, degrees: float = 10, scale=(0.95, 1.05)):
        if jitter < 0:
            raise ValueError(f"jitter must be >= 0, got {jitter!r}")
        if degrees < 0:
            raise ValueError(f"degrees must be >= 0, got {degrees!r}")
        self.mirror_perm = _check_perm(mirror_perm)
        self.flip, self.jitter, self.degrees = bool(flip), float(jitter), float(degrees)
        self.scale = _check_range("scale", scale)

    def __repr__(self) -> str:
        return f"LandmarkAugment(flip={self.flip}, jitter={self.jitter}, degrees={self.degrees}, scale={self.scale})"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.dim() != LANDMARK_DIMS or x.shape[-1] != 3 or x.shape[1] != len(self.mirror_perm):
            raise ValueError(f"LandmarkAugment expects (B, {len(self.mirror_perm)}, 3), got {tuple(x.shape)}")
        b, dev = x.shape[0], x.device
        if self.flip:
            x = torch.where(
                (_rand((b,), generator, dev) < 0.5)[:, None, None], mirror_landmarks(x, self.mirror_perm), x
            )
        if self.degrees or self.scale != (1.0, 1.0):
            rad = self.degrees * math.pi / 180
            yaw = _uniform(b, -rad, rad, generator, dev)
            roll = _uniform(b, -rad, rad, generator, dev)
            zoom = _uniform(b, *self.scale, generator, dev)
            rot = rotation_matrices(yaw, roll) * zoom[:, None, None]
            x = x @ rot.transpose(1, 2).to(x.dtype)
        if self.jitter:
            x = x + self.jitter * _randn(tuple(x.shape), generator, dev).to(x.dtype)
        return x


class DistanceAugment:
    """Mirror (edge permutation) and Gaussian jitter of standardised edge lengths."""

    def __init__(self, edge_perm: torch.Tensor, flip: bool = True, jitter: float = 0.05):
        if jitter < 0:
            raise ValueError(f"jitter must be >= 0, got {jitter!r}")
        self.edge_perm, self.flip, self.jitter = edge_perm, bool(flip), float(jitter)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.flip:
            swap = torch.rand(len(x), generator=generator) < 0.5
            x = torch.where(swap.to(x.device)[:, None], x[:, self.edge_perm.to(x.device)], x)
        if self.jitter:
            x = x + self.jitter * torch.randn(x.shape, generator=generator).to(x.device)
        return x


class VoxelAugment:
    """Mirror along x and shift by up to `shift` voxels (dense grids, after densifying)."""

    def __init__(self, flip: bool = True, shift: int = 1):
        if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
            raise ValueError(f"shift must be an int >= 0, got {shift!r}")
        self.flip, self.shift = bool(flip), shift

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.flip:
            swap = torch.rand(len(x), generator=generator) < 0.5
            x = torch.where(swap.to(x.device)[:, None, None, None, None], x.flip(2), x)
        if self.shift:
            s = self.shift
            dx, dy, dz = torch.randint(-s, s + 1, (3,), generator=generator).tolist()
            x = torch.roll(x, shifts=(dx, dy, dz), dims=(2, 3, 4))
        return x


def mix_batch(
    x: torch.Tensor, target: torch.Tensor, mixup: float, cutmix: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or CutMix of a batch with a shuffled copy of itself: (x, target) with `target` class
    probabilities (B, C). `mixup`/`cutmix` are the Beta(α, α) concentrations (0: off); with both on,
    each batch takes one of the two by a coin flip. One λ and one pairing per batch (Zhang et al.
    2018, Yun et al. 2019); CutMix pastes a box of area 1 − λ and sets λ to the area really kept."""
    if mixup < 0 or cutmix < 0 or not (mixup or cutmix):
        raise ValueError(f"mix_batch needs mixup >= 0 and cutmix >= 0, one of them > 0; got {mixup!r}, {cutmix!r}")
    if target.dim() != 2 or len(target) != len(x):
        raise ValueError(f"mix_batch needs (B, C) target probabilities for B={len(x)}, got {tuple(target.shape)}")
    use_cutmix = bool(cutmix) and (not mixup or bool(torch.rand((), generator=generator) < 0.5))
    if use_cutmix and x.dim() != IMAGE_DIMS:
        raise ValueError(f"CutMix needs (B, C, H, W) images, got shape {tuple(x.shape)}")
    alpha = cutmix if use_cutmix else mixup
    # torch has no Beta sampler that takes a generator: seed numpy's from ours, so runs repeat
    seed = int(torch.randint(2**31 - 1, (), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    pair = torch.randperm(len(x), generator=generator).to(x.device)
    if use_cutmix:
        h, w = x.shape[-2:]
        cut = math.sqrt(1 - lam)
        ch, cw = round(h * cut), round(w * cut)
        cy, cx = int(torch.randint(h, (), generator=generator)), int(torch.randint(w, (), generator=generator))
        top, bottom = max(cy - ch // 2, 0), min(cy + (ch - ch // 2), h)
        left, right = max(cx - cw // 2, 0), min(cx + (cw - cw // 2), w)
        x = x.clone()
        x[..., top:bottom, left:right] = x[..., top:bottom, left:right][pair]  # copies the boxes, not the batch
        lam = 1 - (bottom - top) * (right - left) / (h * w)
    else:
        x = lam * x + (1 - lam) * x[pair]
    return x, lam * target + (1 - lam) * target[pair]
