"""Where one fp32 resnet training step goes on this CPU: seconds a step (batch 128, channels_last,
2 threads, AdamW, label smoothing as trained), its arithmetic (forward GFLOP of the convolutions and
the classifier, x3 for forward + backward) and torch.profiler's op table.
Run from the project folder: python results/trials_2026-12-06/fp32_profile_amd/prof.py"""

import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, ".")
from fer3d.models import build_model

torch.set_num_threads(2)
torch.manual_seed(0)
model = build_model("resnet", num_classes=7).to(memory_format=torch.channels_last)
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
x = torch.randn(128, 1, 48, 48).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 7, (128,))

flops = 0


def count(module, inputs, output):
    global flops
    if isinstance(module, torch.nn.Conv2d):
        flops += output.numel() * module.in_channels * module.kernel_size[0] * module.kernel_size[1] * 2
    elif isinstance(module, torch.nn.Linear):
        flops += output.numel() * module.in_features * 2


hooks = [m.register_forward_hook(count) for m in model.modules()]
with torch.no_grad():
    model(x)
for h in hooks:
    h.remove()


def step():
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(x), y, label_smoothing=0.1)
    loss.backward()
    opt.step()


for _ in range(3):
    step()
start = time.perf_counter()
for _ in range(10):
    step()
seconds = (time.perf_counter() - start) / 10
print(
    f"{seconds:.3f} s a step; forward {flops / 1e9:.1f} GFLOP, a step ~{3 * flops / 1e9:.1f}: "
    f"{3 * flops / seconds / 1e9:.0f} GFLOPS"
)
with profile(activities=[ProfilerActivity.CPU]) as prof:
    for _ in range(5):
        step()
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
