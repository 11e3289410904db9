"""Parameter count and CPU throughput of every registered model, as a markdown table.

    python bench/models_speed.py [--models cnn,mesh_gnn] [--batch 128] [--steps 10] [--threads 2]
                                 [--grid 24] [--set cnn.width=24 ...] [--compile] [--contiguous]
                                 [--side-by-side N] [--precision fp32|bf16]
                                 [--adamw default|foreach|fused]

Training throughput = forward + backward + AdamW step on random data of the model's input
shape (channels_last for 2D nets unless --contiguous); --compile wraps the model in torch.compile
(inductor; its compile time is left out: warm-up steps run first); inference = forward under
torch.inference_mode in eval mode. --precision bf16 runs both under bf16 autocast (training as
`train.precision: bf16` does; a bf16-trained model also scores in bf16 on AMX CPUs and GPUs, plain
forward here, without the flip and shifted views the pipeline's scoring adds).
--adamw: the optimizer step's implementation: default (torch's choice, a per-parameter loop on CPU,
what training uses), foreach (one multi-tensor kernel per update) or fused (one fused kernel).
Each is batch / median step time. --side-by-side N runs N copies at once, each in its own process
with --threads threads, and sums their throughput: what `fer3d repro --jobs N` gets from N models
training side by side (compare `--threads 2` against `--threads 1 --side-by-side 2` on 2 cores).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fer3d.device import cpu_has_amx
from fer3d.models import MODELS, build_model, count_parameters
from fer3d.models.inputs import autocast
from fer3d.training.loop import classification_loss

NUM_POINTS = 478


def mesh_edges() -> torch.Tensor:
    """MediaPipe's face-mesh edges when mediapipe is installed, else a ring plus chords of similar size."""
    try:
        from mediapipe.python.solutions import face_mesh_connections as fmc

        pairs = {tuple(sorted(e)) for e in fmc.FACEMESH_TESSELATION | fmc.FACEMESH_IRISES}
        return torch.tensor(sorted(pairs), dtype=torch.long)
    except Exception:
        i = torch.arange(NUM_POINTS)
        ring = torch.stack([i, (i + 1) % NUM_POINTS], 1)
        chords = torch.stack([i, (i * 7 + 13) % NUM_POINTS], 1)
        more = torch.stack([i, (i + 31) % NUM_POINTS], 1)
        return torch.cat([ring, chords, more])[:1330]


def sample_input(kind: str, batch: int, grid: int, num_edges: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if kind == "image":
        return torch.randn(batch, 1, 48, 48, generator=g).contiguous(memory_format=torch.channels_last)
    if kind == "landmarks":
        return torch.randn(batch, NUM_POINTS, 3, generator=g)
    if kind == "distances":
        return torch.randn(batch, num_edges, generator=g)
    # occupancy about as sparse as 478 points in a grid
    return (torch.rand(batch, 1, grid, grid, grid, generator=g) < 478 / grid**3).float()


def median_seconds(fn, steps: int, warmup: int) -> float:
    """Median wall time of one call: robust to other work briefly taking the shared cores."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(
    name: str,
    batch: int,
    steps: int,
    warmup: int,
    grid: int,
    options: dict,
    compiled: bool = False,
    nhwc: bool = True,
    precision: str = "fp32",
    adamw: str = "default",
) -> dict:
    edges = mesh_edges()
    spec = MODELS[name]
    model = build_model(name, grid=grid, edges=edges, num_edges=len(edges), num_points=NUM_POINTS, **options)
    x = sample_input(spec.input, batch, grid, len(edges))
    if spec.input == "image" and nhwc:
        model = model.to(memory_format=torch.channels_last)
    elif spec.input == "image":
        x = x.contiguous()
    params = count_parameters(model)
    if compiled:
        model = torch.compile(model)
    y = torch.randint(0, 7, (batch,), generator=torch.Generator().manual_seed(1))
    impl = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[adamw]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, **impl)

    amp = autocast(torch.device("cpu"), precision)

    def train_step():
        opt.zero_grad(set_to_none=True)
        with amp:
            logits = model(x)
        classification_loss(logits.float(), y, 0.0).backward()  # as training: members' own losses
        opt.step()

    model.train()
    train = batch / median_seconds(train_step, steps, warmup)
    model.eval()
    with torch.inference_mode(), amp:
        infer = batch / median_seconds(lambda: model(x), steps, warmup)
    return {"params": params, "train": train, "infer": infer}


def measure_side_by_side(copies: int, threads: int, *args) -> dict:
    """`measure(*args)` in `copies` processes at once (they meet at a barrier before timing); the
    sum of their throughputs."""
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(copies), ctx.Queue()

    def one() -> None:
        torch.set_num_threads(threads)
        barrier.wait()
        results.put(measure(*args))

    procs = [ctx.Process(target=one) for _ in range(copies)]
    for proc in procs:
        proc.start()
    runs = [results.get() for _ in procs]
    for proc in procs:
        proc.join()
    return {"params": runs[0]["params"], **{k: sum(r[k] for r in runs) for k in ("train", "infer")}}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated model names")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--grid", type=int, default=24)
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="MODEL.OPTION=VALUE",
        help="override a model option, e.g. cnn.width=24 (repeatable)",
    )
    ap.add_argument("--compile", action="store_true", help="torch.compile (inductor) every model")
    ap.add_argument("--contiguous", action="store_true", help="2D nets in NCHW instead of channels_last")
    ap.add_argument("--side-by-side", type=int, default=1, metavar="N", help="N copies at once, throughput summed")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="autocast dtype of the steps")
    ap.add_argument("--adamw", choices=("default", "foreach", "fused"), default="default", help="AdamW's step kernel")
    args = ap.parse_args(argv)
    if args.side_by_side < 1:
        ap.error(f"--side-by-side must be >= 1, found {args.side_by_side}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
    overrides: dict[str, dict] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        model, _, option = key.partition(".")
        with contextlib.suppress(ValueError, SyntaxError):
            value = ast.literal_eval(value)
        overrides.setdefault(model, {})[option] = value

    print(
        f"torch {torch.__version__}, {args.threads} threads"
        f"{f' x {args.side_by_side} processes side by side (summed)' if args.side_by_side > 1 else ''}, "
        f"batch {args.batch}, grid {args.grid}, "
        f"{'compiled' if args.compile else 'eager'}, {'NCHW' if args.contiguous else 'channels_last'}, "
        f"{args.precision}{' (CPU has AMX)' if cpu_has_amx() else ''}, AdamW {args.adamw}\n"
    )
    print("| model | family | input | params | train samples/s | inference samples/s |")
    print("|---|---|---|---:|---:|---:|")
    for name in names:
        options = (name, args.batch, args.steps, args.warmup, args.grid, overrides.get(name, {}))
        options += (args.compile, not args.contiguous, args.precision, args.adamw)
        if args.side_by_side > 1:
            r = measure_side_by_side(args.side_by_side, args.threads, *options)
        else:
            r = measure(*options)
        spec = MODELS[name]
        print(
            f"| {name} | {spec.family} | {spec.input} | {r['params']:,} | {r['train']:,.0f} | {r['infer']:,.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
