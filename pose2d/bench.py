"""Train-step throughput (images/s) and peak memory of the 2D detector: the reference mode against
our fast path, side by side in one run on one device.

    python -m pose2d.bench                    # CUDA: W32 and W48 at B=32 and 64, 256×192
    python -m pose2d.bench --quick            # CUDA: shorter measurement window
    python -m pose2d.bench --width 32 --batch 2   # CPU default: W32, B=2

Rows, per (width, B):

- ``reference``: HRNet without CAM, fp32, eager, contiguous (NCHW) tensors, ``cudnn.benchmark``
  off, Adam's default implementation: the official model and step.
- ``reference bf16``: the same under bf16 autocast, the denominator of every ratio (``×``).
- ``reference paper``: HRNet + CAM ``paper`` in reference mode (CAM's own cost).
- ``fast HRNet`` / ``fast paper``: ``--fast-precision`` (bf16 on CUDA, fp32 on CPU), channels-last
  tensors, ``cudnn.benchmark``, fused Adam on CUDA, optionally ``--compile``; without / with CAM.

Steps run interleaved across rows (one step of each in turn) on synthetic inputs, so this measures
the network + optimiser, not data loading (``python -m datamodules.loader_bench`` measures that).
CUDA steps are timed with ``synchronize`` (wall clock), CPU steps with this process's CPU time.
The table is printed and written with its settings to ``--json`` (atomically).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import torch

from callbacks.atomic_io import atomic_write_text
from callbacks.step_timing import add_ratios, measure_interleaved, rate_summary, timed_step
from pose2d.hrnet import PoseHighResolutionNet
from pose2d.loss import JointsMSELoss

_DTYPES = {"32-true": None, "32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
DENOMINATOR = "reference bf16"
TINY = dict(num_blocks=2, stage_modules=[1, 1, 1], stem_channels=16)


@dataclass
class Row:
    """One configuration of the comparison table."""

    name: str
    cam_placement: str
    precision: str
    channels_last: bool = False
    cudnn_benchmark: bool = False
    fused_adam: bool = False
    compile: bool = False
    times: list[float] = field(default_factory=list)
    peak_bytes: int = 0
    error: str = ""


def default_rows(fast_precision: str, cam: str, compile: bool, cuda: bool) -> list[Row]:
    """The five rows of the module docstring."""
    fast = dict(channels_last=True, cudnn_benchmark=cuda, fused_adam=cuda, compile=compile)
    return [
        Row("reference", "none", "32-true"),
        Row(DENOMINATOR, "none", "bf16-mixed"),
        Row("reference paper", cam, "32-true"),
        Row("fast HRNet", "none", fast_precision, **fast),
        Row("fast paper", cam, fast_precision, **fast),
    ]


class _Step:
    """Network, optimiser and inputs of one row; ``__call__`` runs one train step."""

    def __init__(self, row: Row, width: int, batch: int, input_hw: tuple[int, int],
                 device: torch.device, seed: int = 0, **model_kwargs):  # fmt: skip
        if row.precision not in _DTYPES:
            raise ValueError(f"precision must be one of {sorted(_DTYPES)}, got {row.precision!r}")
        torch.manual_seed(seed)
        self.row, self.device, self.dtype = row, device, _DTYPES[row.precision]
        model = PoseHighResolutionNet(width=width, cam_placement=row.cam_placement, **model_kwargs)
        fmt = torch.channels_last if row.channels_last else torch.contiguous_format
        self.model = model.to(device).to(memory_format=fmt).train()
        self.run = torch.compile(self.model) if row.compile else self.model
        h, w = input_hw
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(batch, 3, h, w, generator=gen).to(device).contiguous(memory_format=fmt)
        joints = self.model.final_layer.out_channels
        self.target = torch.rand(batch, joints, h // 4, w // 4, generator=gen).to(device)
        self.weight = torch.ones(batch, joints, 1, device=device)
        fused = {"fused": True} if row.fused_adam else {}
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, **fused)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)
        self.crit = JointsMSELoss()

    def __call__(self) -> None:
        torch.backends.cudnn.benchmark = self.row.cudnn_benchmark
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32,
                            enabled=self.dtype is not None):  # fmt: skip
            loss = self.crit(self.run(self.x), self.target, self.weight)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()


def measure(rows: list[Row], width: int, batch: int, input_hw: tuple[int, int], steps: int,
            warmup: int, device: torch.device, **model_kwargs) -> list[Row]:  # fmt: skip
    """Fill ``times``/``peak_bytes`` (or ``error``: out of memory) of every row, interleaved."""
    measure_interleaved(
        rows, lambda row: _Step(row, width, batch, input_hw, device, **model_kwargs), steps,
        warmup, device,
    )  # fmt: skip
    torch.backends.cudnn.benchmark = False
    return rows


def summarise(rows: list[Row], width: int, batch: int) -> list[dict]:
    out = []
    for r in rows:
        d = {"width": width, "batch": batch, "row": r.name, "cam_placement": r.cam_placement,
             "precision": r.precision, "channels_last": r.channels_last,
             "cudnn_benchmark": r.cudnn_benchmark, "fused_adam": r.fused_adam,
             "compile": r.compile, "steps": len(r.times), "error": r.error}  # fmt: skip
        d.update(rate_summary(r, batch, "images_per_s"))
        out.append(d)
    return add_ratios(out, "images_per_s", DENOMINATOR)


def table(summary: list[dict]) -> str:
    lines = ["| HRNet | B | row | CAM | precision | train img/s (median) | min–max | peak GiB "
             "| × bf16 ref |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for d in summary:
        name = f"W{d['width']}"
        if "images_per_s" not in d:
            lines.append(f"| {name} | {d['batch']} | {d['row']} | {d['cam_placement']} | "
                         f"{d['precision']} | {d['error'] or 'not run'} | | | |")  # fmt: skip
            continue
        opts = "".join(s for s, on in ((" + NHWC", d["channels_last"]),
                                       (" + compile", d["compile"])) if on)  # fmt: skip
        peak = "–" if d["peak_gib"] is None else f"{d['peak_gib']:.2f}"
        ratio = "–" if d["ratio"] is None else f"{d['ratio']:.2f}"
        lines.append(
            f"| {name} | {d['batch']} | {d['row']} | {d['cam_placement']} | {d['precision']}{opts}"
            f" | {d['images_per_s']:.2f} | {d['images_per_s_min']:.2f}–{d['images_per_s_max']:.2f}"
            f" | {peak} | {ratio} |"
        )
    return "\n".join(lines)


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
    """Time ``steps`` Adam train steps of one configuration; returns a plain dict of results."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    row = Row("single", cam_placement, precision, channels_last)
    step = _Step(row, width, batch, input_hw, dev, **model_kwargs)
    for _ in range(warmup):
        step()
    for _ in range(steps):
        dt, peak = timed_step(step, dev)
        row.times.append(dt)
        row.peak_bytes = max(row.peak_bytes, peak)
    cuda = dev.type == "cuda"
    if cuda:
        peak_mb, hw = row.peak_bytes / 2**20, torch.cuda.get_device_name(dev)
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process RSS
        hw = f"CPU ({torch.get_num_threads()} threads)"
    dt = statistics.median(row.times)
    return {"device": hw, "width": width, "cam_placement": cam_placement, "batch": batch,
            "input_hw": list(input_hw), "precision": precision, "channels_last": channels_last,
            "steps": steps, "images_per_s": round(batch / dt, 2), "s_per_step": round(dt, 4),
            "peak_memory_mb": round(peak_mb, 1),
            "memory_kind": "cuda max_allocated" if cuda else "process max RSS"}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(prog="python -m pose2d.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--width", type=int, nargs="+", default=[32, 48] if cuda else [32])
    ap.add_argument("--cam", default="paper", help="CAM of the paper rows (preset or sites)")
    ap.add_argument("--batch", type=int, nargs="+", default=[32, 64] if cuda else [2])
    ap.add_argument("--input", type=int, nargs=2, default=[256, 192], metavar=("H", "W"))
    ap.add_argument("--fast-precision", default="bf16-mixed" if cuda else "32-true",
                    choices=sorted(_DTYPES))  # fmt: skip
    ap.add_argument("--compile", action="store_true", help="torch.compile the fast rows")
    ap.add_argument("--rows", nargs="+", help="only these rows (names as in the table)")
    ap.add_argument("--quick", action="store_true", help="short measurement window")
    ap.add_argument("--steps", type=int, help="timed rounds (default 20 on CUDA, 3 on CPU)")
    ap.add_argument("--warmup", type=int, help="untimed steps per row (default 5 / 1)")
    ap.add_argument("--threads", type=int, help="torch threads (CPU); default: torch's")
    ap.add_argument("--tiny", action="store_true", help="a shallow HRNet: only checks it runs")
    ap.add_argument(
        "--json", default=None, help="result file (default runs/bench/pose2d_<dev>.json)"
    )
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if cuda else "cpu")
    steps = args.steps or ((8 if args.quick else 20) if cuda else 3)
    warmup = args.warmup if args.warmup is not None else ((3 if args.quick else 5) if cuda else 1)
    hw = torch.cuda.get_device_name(0) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    head = (f"device: {hw}; torch {torch.__version__}; input {args.input[0]}×{args.input[1]}; "
            f"{steps} interleaved steps after {warmup} warm-up; clock: "
            f"{'synchronised wall' if cuda else 'process CPU time'}")  # fmt: skip
    print(head, flush=True)
    summary: list[dict] = []
    for width in args.width:
        for batch in args.batch:
            rows = default_rows(args.fast_precision, args.cam, args.compile, cuda)
            if args.rows:
                rows = [r for r in rows if r.name in args.rows]
            measure(rows, width, batch, tuple(args.input), steps, warmup, device,
                    **(TINY if args.tiny else {}))  # fmt: skip
            part = summarise(rows, width, batch)
            summary += part
            print(table(part), flush=True)
    result = {"header": head, "device": hw, "torch": torch.__version__,
              "input_hw": list(args.input), "steps": steps, "warmup": warmup,
              "rows": summary}  # fmt: skip
    out = Path(args.json or f"runs/bench/pose2d_{device.type}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
