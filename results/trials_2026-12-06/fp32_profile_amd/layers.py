"""Forward and backward milliseconds of each resnet convolution shape (batch 128, 2 threads):
oneDNN channels_last (what training uses), oneDNN NCHW, and torch's own kernels (oneDNN off).
Run from anywhere: python layers.py"""

import time

import torch

torch.set_num_threads(2)
# (in channels, out channels, input side, stride, kernel)
SHAPES = [
    (1, 16, 48, 1, 3),
    (16, 32, 48, 2, 3),
    (32, 32, 24, 1, 3),
    (16, 32, 48, 2, 1),
    (32, 96, 24, 2, 3),
    (96, 96, 12, 1, 3),
    (32, 96, 24, 2, 1),
    (96, 192, 12, 2, 3),
    (192, 192, 6, 1, 3),
    (96, 192, 12, 2, 1),
]
NAMES = ("channels_last", "NCHW", "oneDNN off")


def bench(cin, cout, side, stride, k, mkldnn=True, channels_last=True, n=10):
    torch.backends.mkldnn.enabled = mkldnn
    conv = torch.nn.Conv2d(cin, cout, k, stride, padding=k // 2, bias=False)
    x = torch.randn(128, cin, side, side)
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(cin > 1)
    grad = torch.randn_like(conv(x))
    for _ in range(3):
        conv(x).backward(grad)
    start = time.perf_counter()
    for _ in range(n):
        conv(x)
    forward = (time.perf_counter() - start) / n
    start = time.perf_counter()
    for _ in range(n):
        conv(x).backward(grad)
    return 1e3 * forward, 1e3 * ((time.perf_counter() - start) / n - forward)


for shape in SHAPES:
    a, b, c = bench(*shape), bench(*shape, channels_last=False), bench(*shape, mkldnn=False, channels_last=False)
    print(shape, " | ".join(f"{name} {f:.1f} / {bw:.1f}" for name, (f, bw) in zip(NAMES, (a, b, c))), "ms")
