"""Train-step throughput of the lifter: the reference (official-equivalent) mode against our fast
path, measured side by side in one run on one device.

    python -m pose3d.bench                       # CUDA: T=27/81/243, B=512/512/128 (+1024 at 243)
    python -m pose3d.bench --quick               # CUDA: shorter measurement window (< 5 min)
    python -m pose3d.bench --frames 27 81 --batch 32    # any device; CPU default: tiny sizes
    python -m pose3d.bench --activations         # saved activations per sequence (CPU count)

Rows, per (T, B):

- ``reference``: the PoseFormer configuration (no SAM/TAM, centre head, dropout 0 as the official
  ``run_poseformer.py``), fp32, eager, ``layer_impl="reference"``, ``attn_impl="math"``, Adam's
  default implementation: operationally the official model.
- ``reference bf16``: the same under bf16 autocast, the official code's best setting and the
  denominator of every ratio (``×``).
- ``reference paper``: the paper model (SAM + TAM + sequence head, dropout ``--paper-dropout``) in
  reference mode.
- ``fast PoseFormer`` / ``fast paper``: ``layer_impl="fast"``, ``attn_impl="auto"`` (fused SDPA,
  chunked on CUDA), ``--fast-precision`` (bf16 on CUDA, fp32 on CPU), fused Adam on CUDA,
  optionally ``--compile``.

A train step is forward + LiftingLoss + backward + Adam step on fixed random inputs. The rows run
interleaved (one step of each in turn, ``--steps`` rounds after ``--warmup``), so a load change on a
shared machine hits all rows alike; each row reports the median and the min–max of its steps. On
CUDA a step is timed with ``synchronize`` (wall clock); on CPU with this process's CPU time (the
machine may be shared). The table is printed and written, with the settings, to ``--json``
(atomically). ``--fit`` also times a short ``python -m pose3d fit`` on the synthetic set through
the CLI (data loading + step + logging + callbacks).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from callbacks.atomic_io import atomic_write_text
from callbacks.step_timing import add_ratios, measure_interleaved, rate_summary, timed_step
from pose3d.lifter import PoseLifter, count_parameters
from pose3d.loss import LiftingLoss

MODELS = {
    "ours": dict(),
    "poseformer": dict(use_sam=False, use_tam=False, head="center"),
}
_DTYPES = {"32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
DENOMINATOR = "reference bf16"
TINY = dict(spatial_dim=8, spatial_depth=1, temporal_depth=1, spatial_heads=2, temporal_heads=2,
            sam_groups=2)  # fmt: skip


@dataclass
class Row:
    """One configuration of the comparison table."""

    name: str
    model: str  # key of MODELS
    layer_impl: str
    attn_impl: str
    precision: str
    dropout: float
    compile: bool = False
    fused_adam: bool = False
    times: list[float] = field(default_factory=list)
    peak_bytes: int = 0
    error: str = ""


def default_rows(fast_precision: str, paper_dropout: float, compile: bool, cuda: bool) -> list[Row]:
    """The five rows of the module docstring."""
    return [
        Row("reference", "poseformer", "reference", "math", "32", 0.0),
        Row(DENOMINATOR, "poseformer", "reference", "math", "bf16", 0.0),
        Row("reference paper", "ours", "reference", "math", "32", paper_dropout),
        Row("fast PoseFormer", "poseformer", "fast", "auto", fast_precision, 0.0, compile, cuda),
        Row("fast paper", "ours", "fast", "auto", fast_precision, paper_dropout, compile, cuda),
    ]


class _Step:
    """Model, optimiser and inputs of one row; ``__call__`` runs one train step."""

    def __init__(self, row: Row, batch: int, frames: int, device: torch.device, seed: int = 0,
                 **model_kw):  # fmt: skip
        torch.manual_seed(seed)
        kw = dict(MODELS[row.model], dropout=row.dropout, **model_kw)
        self.model = PoseLifter(frames, layer_impl=row.layer_impl, attn_impl=row.attn_impl, **kw)
        self.model.to(device).train()
        self.params = count_parameters(self.model)
        self.run = torch.compile(self.model) if row.compile else self.model
        fused = {"fused": True} if row.fused_adam else {}
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-4, **fused)
        self.loss_fn = LiftingLoss()
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(batch, frames, 17, 2, generator=gen).to(device)
        self.y = (torch.randn(batch, frames, 17, 3, generator=gen) * 0.2).to(device)
        self.dtype = _DTYPES[row.precision]
        self.device = device
        self.scaler = torch.amp.GradScaler(device.type, enabled=row.precision == "fp16")

    def __call__(self) -> None:
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32,
                            enabled=self.dtype is not None):  # fmt: skip
            loss = self.loss_fn(self.run(self.x), self.y)["loss"]
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()


def measure(rows: list[Row], batch: int, frames: int, steps: int, warmup: int,
            device: torch.device, **model_kw) -> list[Row]:  # fmt: skip
    """Fill ``times``/``peak_bytes`` (or ``error``: out of memory) of every row, interleaved."""
    measure_interleaved(
        rows, lambda row: _Step(row, batch, frames, device, **model_kw), steps, warmup, device
    )
    return rows


def summarise(rows: list[Row], batch: int, frames: int) -> list[dict]:
    """Plain dicts: samples/s (median, min, max), peak GiB and the ratio to the bf16 reference."""
    out = []
    for r in rows:
        d = {"frames": frames, "batch": batch, "row": r.name, "model": r.model,
             "layer_impl": r.layer_impl, "attn_impl": r.attn_impl, "precision": r.precision,
             "dropout": r.dropout, "compile": r.compile, "fused_adam": r.fused_adam,
             "steps": len(r.times), "error": r.error}  # fmt: skip
        d.update(rate_summary(r, batch, "seq_per_s"))
        out.append(d)
    return add_ratios(out, "seq_per_s", DENOMINATOR)


def overheads(summary: list[dict]) -> list[dict]:
    """Cost of the paper model over the PoseFormer configuration in the same mode, per (T, B):
    ``PoseFormer samples/s / paper samples/s - 1``."""
    pairs = (
        ("reference", "reference", "reference paper"),
        ("fast", "fast PoseFormer", "fast paper"),
    )
    out = []
    for frames, batch in dict.fromkeys((d["frames"], d["batch"]) for d in summary):
        rows = {d["row"]: d for d in summary if (d["frames"], d["batch"]) == (frames, batch)}
        for mode, base, paper in pairs:
            if "seq_per_s" in rows.get(base, {}) and "seq_per_s" in rows.get(paper, {}):
                cost = rows[base]["seq_per_s"] / rows[paper]["seq_per_s"] - 1.0
                out.append({"frames": frames, "batch": batch, "mode": mode, "overhead": cost})
    return out


def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def table(summary: list[dict]) -> str:
    lines = ["| T | B | row | precision | train seq/s (median) | min–max | peak GiB | × bf16 ref |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for d in summary:
        if "seq_per_s" not in d:
            lines.append(f"| {d['frames']} | {d['batch']} | {d['row']} | {d['precision']} | "
                         f"{d['error'] or 'not run'} | | | |")  # fmt: skip
            continue
        extra = " + compile" if d["compile"] else ""
        lines.append(
            f"| {d['frames']} | {d['batch']} | {d['row']} | {d['precision']}{extra} | "
            f"{d['seq_per_s']:.1f} | {d['seq_per_s_min']:.1f}–{d['seq_per_s_max']:.1f} | "
            f"{_fmt(d['peak_gib'], '.2f')} | {_fmt(d['ratio'], '.2f')} |"
        )
    return "\n".join(lines)


def fit_slice(batches: int, batch: int, device: str, extra: list[str] | None = None) -> dict:
    """Time ``python -m pose3d fit`` on the synthetic set for ``batches`` training batches (CLI,
    data loader, logging and callbacks included) and return its Throughput figures."""
    with tempfile.TemporaryDirectory(prefix="pose3d-bench-fit-") as tmp:
        cmd = [sys.executable, "-m", "pose3d", "fit", "--config", "configs/pose3d/synthetic.yaml",
               f"--data.init_args.root={tmp}/data", f"--run.dir={tmp}/run",
               f"--data.init_args.batch_size={batch}", "--trainer.max_epochs=1",
               f"--trainer.limit_train_batches={batches}", "--trainer.limit_val_batches=0",
               "--trainer.num_sanity_val_steps=0", f"--trainer.accelerator={device}",
               "--trainer.devices=1",
               *(extra or [])]  # fmt: skip
        env = dict(os.environ, WANDB_MODE="disabled")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1:] or ["fit failed"], "cmd": cmd}
        rate = epoch_s = None
        for csv in Path(tmp, "run").rglob("metrics.csv"):
            import csv as _csv

            with open(csv) as f:
                for rec in _csv.DictReader(f):
                    if rec.get("perf/train_epoch_samples_per_s"):
                        rate = float(rec["perf/train_epoch_samples_per_s"])
                        epoch_s = float(rec["perf/train_epoch_s"])
        step_only = _synthetic_step_rate(batch, torch.device(device))
        return {"batches": batches, "batch": batch, "epoch_samples_per_s": rate,
                "epoch_s": epoch_s, "process_wall_s": wall, "step_only_samples_per_s": step_only,
                "cmd": " ".join(cmd[1:])}  # fmt: skip


def _synthetic_step_rate(batch: int, device: torch.device, steps: int = 5) -> float:
    """Train-step samples/s (synchronised wall clock, as the Throughput callback) of the model in
    configs/pose3d/synthetic.yaml, without data loading or logging: the fit slice's ceiling."""
    import inspect

    import yaml

    cfg = yaml.safe_load(Path("configs/pose3d/synthetic.yaml").read_text())
    names = set(inspect.signature(PoseLifter).parameters)
    kw = {k: v for k, v in cfg["model"].items() if k in names}
    frames = cfg["data"]["init_args"]["frames"]
    model = PoseLifter(frames, **kw).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, frames, 17, 2, device=device)
    y = torch.randn(batch, frames, 17, 3, device=device) * 0.2
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss = LiftingLoss()(model(x), y)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:
            times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


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

    dtype = _DTYPES.get(precision)
    x = torch.randn(batch, frames, 17, 2)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            LiftingLoss()(model(x), torch.zeros(batch, frames, 17, 3))["loss"]
    return sum(seen.values())


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
    layer_impl: str = "fast",
) -> dict:
    """One configuration → ``{"seq_per_s", "peak_gib", "params"}`` (``steps`` timed steps)."""
    row = Row(name, name, layer_impl, attn_impl, precision, 0.1, compile)
    step = _Step(row, batch, frames, device)
    for _ in range(warmup):
        step()
    for _ in range(steps):
        dt, peak = timed_step(step, device)
        row.times.append(dt)
        row.peak_bytes = max(row.peak_bytes, peak)
    peak_gib = row.peak_bytes / 2**30 if device.type == "cuda" else float("nan")
    return {"seq_per_s": batch / statistics.median(row.times), "peak_gib": peak_gib,
            "params": step.params}  # fmt: skip


def _sizes(a: argparse.Namespace, cuda: bool) -> list[tuple[int, int]]:
    if a.frames or a.batch:
        frames = a.frames or ([27, 81, 243] if cuda else [9, 27])
        batches = a.batch or ([512] if cuda else [8])
        return [(t, b) for t in frames for b in batches]
    if cuda:  # the issue's sizes; the paper's global 1,024 at T=243 where it fits
        return [(27, 512), (81, 512), (243, 128), (243, 1024)]
    return [(9, 8), (27, 8)]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m pose3d.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    cuda = torch.cuda.is_available()
    p.add_argument("--frames", type=int, nargs="+", help="window lengths (default: see above)")
    p.add_argument("--batch", type=int, nargs="+", help="batch sizes (default: see above)")
    p.add_argument("--quick", action="store_true", help="short measurement window")
    p.add_argument("--steps", type=int, help="timed rounds (default 20 on CUDA, 5 on CPU)")
    p.add_argument("--warmup", type=int, help="untimed steps per row (default 5 / 1)")
    p.add_argument("--fast-precision", choices=list(_DTYPES), default="bf16" if cuda else "32")
    p.add_argument(
        "--paper-dropout",
        type=float,
        default=0.1,
        help="dropout of the paper-model rows (paper: 0.1; 0 isolates SAM/TAM/head)",
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the fast rows")
    p.add_argument("--rows", nargs="+", help="only these rows (names as in the table)")
    p.add_argument("--threads", type=int, help="torch threads (CPU); default: torch's")
    p.add_argument("--tiny", action="store_true", help="a tiny lifter: only checks that it runs")
    p.add_argument(
        "--json", default=None, help="result file (default runs/bench/pose3d_<dev>.json)"
    )
    p.add_argument(
        "--fit",
        type=int,
        default=0,
        metavar="N",
        help="also time N training batches of `pose3d fit` on synthetic data",
    )
    p.add_argument("--activations", action="store_true",
                   help="instead: count saved activations per sequence (CPU), extrapolated to "
                   "--batch")  # fmt: skip
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.activations:
        batch = (a.batch or [1024])[0]
        print(f"| model | T | saved activations per sequence (bf16) | × B={batch} |")
        print("|---|---|---|---|")
        for frames in a.frames or [81, 243]:
            for m in MODELS:
                per = saved_activation_bytes(m, 2, frames) - saved_activation_bytes(m, 1, frames)
                print(f"| {m} | {frames} | {per / 2**20:.1f} MiB | "
                      f"{per * batch / 2**30:.1f} GiB |", flush=True)  # fmt: skip
        return {}
    device = torch.device("cuda" if cuda else "cpu")
    steps = a.steps or ((8 if a.quick else 20) if cuda else (3 if a.quick else 5))
    warmup = a.warmup if a.warmup is not None else ((3 if a.quick else 5) if cuda else 1)
    hw = torch.cuda.get_device_name(0) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    head = (f"device: {hw}; torch {torch.__version__}; {steps} interleaved steps after {warmup} "
            f"warm-up; clock: {'synchronised wall' if cuda else 'process CPU time'}")  # fmt: skip
    print(head, flush=True)
    summary: list[dict] = []
    for frames, batch in _sizes(a, cuda):
        rows = default_rows(a.fast_precision, a.paper_dropout, a.compile, cuda)
        if a.rows:
            rows = [r for r in rows if r.name in a.rows]
        measure(rows, batch, frames, steps, warmup, device, **(TINY if a.tiny else {}))
        part = summarise(rows, batch, frames)
        summary += part
        print(table(part), flush=True)
    over = overheads(summary)
    for o in over:
        print(f"paper model over PoseFormer config, {o['mode']} mode, T={o['frames']} "
              f"B={o['batch']}: {o['overhead'] * 100:+.1f} %")  # fmt: skip
    result = {"header": head, "device": hw, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "steps": steps, "warmup": warmup,
              "rows": summary, "overheads": over}  # fmt: skip
    if a.fit:
        result["fit"] = fit_slice(a.fit, (a.batch or [128])[0], device.type)
        print("fit slice (CLI, synthetic data):", json.dumps(result["fit"]), flush=True)
    out = Path(a.json or f"runs/bench/pose3d_{device.type}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
