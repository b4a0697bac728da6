"""Train-step throughput and peak memory of the lifter (full model and PoseFormer config).

    python -m pose3d.bench --batch 1024 --frames 243 --precision bf16   # on a GPU
    python -m pose3d.bench                                               # CPU: tiny sizes

A train step = forward + LiftingLoss + backward + Adam step, on random inputs; reports the median
of ``--steps`` steps after ``--warmup`` steps, as sequences/s, plus peak CUDA memory.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from pose3d.lifter import PoseLifter, count_parameters
from pose3d.loss import LiftingLoss

MODELS = {
    "ours": dict(),
    "poseformer": dict(use_sam=False, use_tam=False, head="center"),
}


def bench(
    name: str,
    batch: int,
    frames: int,
    precision: str,
    steps: int,
    warmup: int,
    device: torch.device,
    attn_impl: str = "auto",
    compile: bool = False,
) -> dict:
    """One configuration → ``{"seq_per_s", "peak_gib", "params"}``."""
    model = PoseLifter(frames, attn_impl=attn_impl, **MODELS[name]).to(device)
    params = count_parameters(model)
    step_model = torch.compile(model) if compile else model
    loss_fn = LiftingLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, frames, 17, 2, device=device)
    y = torch.randn(batch, frames, 17, 3, device=device) * 0.2
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = loss_fn(step_model(x), y)["loss"]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    peak = (
        torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    )
    return {"seq_per_s": batch / statistics.median(times), "peak_gib": peak, "params": params}


def _gib(x: float) -> str:
    return "n/a (CPU)" if math.isnan(x) else f"{x:.2f}"


def saved_activation_bytes(
    name: str, batch: int, frames: int, precision: str = "bf16", **model_kw
) -> int:
    """Bytes autograd keeps for the backward pass of one training forward + loss (any device:
    counted with saved-tensor hooks, each storage once). Difference two batch sizes to get the
    per-sequence cost, which scales linearly to large batches."""
    model = PoseLifter(frames, **MODELS[name], **model_kw).train()
    seen: dict[tuple[int, int], int] = {}
    params = {p.data_ptr() for p in model.parameters()}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            seen[(ptr, t.device.index or 0)] = t.untyped_storage().nbytes()
        return t

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    x = torch.randn(batch, frames, 17, 2)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            LiftingLoss()(model(x), torch.zeros(batch, frames, 17, 3))["loss"]
    return sum(seen.values())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m pose3d.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    cuda = torch.cuda.is_available()
    p.add_argument("--batch", type=int, default=1024 if cuda else 4)
    p.add_argument("--frames", type=int, nargs="+", default=[81, 243] if cuda else [9])
    p.add_argument("--precision", default="bf16" if cuda else "32", choices=["32", "bf16", "fp16"])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--attn-impl", default="auto", choices=["auto", "sdpa", "math"])
    p.add_argument("--compile", action="store_true")
    p.add_argument("--steps", type=int, default=10 if cuda else 2)
    p.add_argument("--warmup", type=int, default=3 if cuda else 1)
    p.add_argument("--activations", action="store_true",
                   help="instead: count saved activations per sequence (CPU) and extrapolate "
                   "to --batch")  # fmt: skip
    a = p.parse_args(argv)
    if a.activations:
        print(f"| model | T | precision | saved activations per sequence | × B={a.batch} |")
        print("|---|---|---|---|---|")
        for frames in a.frames:
            for m in a.models:
                per = saved_activation_bytes(m, 2, frames, a.precision) - saved_activation_bytes(
                    m, 1, frames, a.precision
                )
                print(f"| {m} | {frames} | {a.precision} | {per / 2**20:.1f} MiB | "
                      f"{per * a.batch / 2**30:.1f} GiB |", flush=True)  # fmt: skip
        return
    device = torch.device("cuda" if cuda else "cpu")
    name = torch.cuda.get_device_name(0) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}; precision {a.precision}; "
          f"attn {a.attn_impl}{' + compile' if a.compile else ''}")  # fmt: skip
    print("| model | params | T | B | train seq/s | peak GiB |\n|---|---|---|---|---|---|")
    for frames in a.frames:
        for m in a.models:
            r = bench(m, a.batch, frames, a.precision, a.steps, a.warmup, device, a.attn_impl,
                      a.compile)  # fmt: skip
            print(f"| {m} | {r['params'] / 1e6:.3f}M | {frames} | {a.batch} | "
                  f"{r['seq_per_s']:.1f} | {_gib(r['peak_gib'])} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
