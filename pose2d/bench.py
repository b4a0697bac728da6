"""Train-step throughput (images/s) and peak memory of the 2D detector.

``python -m pose2d.bench --width 32 --batch 32 --precision bf16-mixed --channels-last``. Runs on
CUDA when present, else on CPU (there the defaults shrink to a batch of 2 at 256×192 unless
given). Synthetic inputs: this measures the network + optimiser, not data loading.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from pose2d.hrnet import PoseHighResolutionNet
from pose2d.loss import JointsMSELoss

_DTYPES = {"32-true": None, "32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def bench_train_step(
    width: int = 32,
    cam_placement: str = "none",
    batch: int = 32,
    input_hw: tuple[int, int] = (256, 192),
    precision: str = "32-true",
    channels_last: bool = False,
    steps: int = 20,
    warmup: int = 3,
    device: str | None = None,
    **model_kwargs,
) -> dict:
    """Time ``steps`` Adam train steps after ``warmup``; returns a plain dict of results."""
    if precision not in _DTYPES:
        raise ValueError(f"precision must be one of {sorted(_DTYPES)}, got {precision!r}")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = _DTYPES[precision]
    model = PoseHighResolutionNet(width=width, cam_placement=cam_placement, **model_kwargs).to(dev)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    h, w = input_hw
    x = torch.randn(batch, 3, h, w, device=dev).contiguous(memory_format=fmt)
    target = torch.rand(batch, model.final_layer.out_channels, h // 4, w // 4, device=dev)
    weight = torch.ones(batch, target.shape[1], device=dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)
    crit = JointsMSELoss()

    def step() -> None:
        with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = crit(model(x), target, weight)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for _ in range(warmup):
        step()
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    dt = time.perf_counter() - t0
    if dev.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(dev) / 2**20
        hw = torch.cuda.get_device_name(dev)
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process RSS
        hw = f"CPU ({torch.get_num_threads()} threads)"
    return {
        "device": hw,
        "width": width,
        "cam_placement": cam_placement,
        "batch": batch,
        "input_hw": list(input_hw),
        "precision": precision,
        "channels_last": channels_last,
        "steps": steps,
        "images_per_s": round(batch * steps / dt, 2),
        "s_per_step": round(dt / steps, 4),
        "peak_memory_mb": round(peak_mb, 1),
        "memory_kind": "cuda max_allocated" if dev.type == "cuda" else "process max RSS",
    }


def main(argv: list[str] | None = None) -> dict:
    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(prog="python -m pose2d.bench", description=__doc__)
    ap.add_argument("--width", type=int, default=32)
    # Defaults measure the paper's model (W32 + CAM) at issue 4's 64 images per GPU.
    ap.add_argument("--cam", default="paper", help="cam_placement preset or sites (none: HRNet)")
    ap.add_argument("--batch", type=int, default=64 if cuda else 2)
    ap.add_argument("--input", type=int, nargs=2, default=[256, 192], metavar=("H", "W"))
    ap.add_argument("--precision", default="bf16-mixed" if cuda else "32-true",
                    choices=sorted(_DTYPES))  # fmt: skip
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--steps", type=int, default=20 if cuda else 3)
    ap.add_argument("--warmup", type=int, default=3 if cuda else 1)
    args = ap.parse_args(argv)
    res = bench_train_step(
        args.width, args.cam, args.batch, tuple(args.input), args.precision,
        args.channels_last, args.steps, args.warmup,
    )  # fmt: skip
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
