"""Throughput of the training loaders, so a fast train step is never hidden behind its data.

    python -m datamodules.loader_bench            # both loaders
    python -m datamodules.loader_bench --quick    # fewer samples

- **COCO** (2D): the training dataset exactly as training runs it (JPEG decode, half-body /
  scale / rotation / flip augmentation, affine crop to 256×192, Gaussian heatmap targets) on
  COCO-sized synthetic JPEGs (640×480, written to a temporary folder). Reported per worker as
  samples per CPU-second of one process (what one worker sustains on a core of its own), the time
  split between decoding and the rest, and the projection to ``--workers`` workers (× workers: the
  workers share nothing, so the projection holds while each has a core and the disk keeps up).
- **3D windows**: ``PoseWindowDataset`` batches (mirrored windows at probability 0.5) through a
  ``DataLoader`` in this process, at T = 243 over an in-memory cache the size of Human3.6M's
  training split (1.56M frames), side by side: the reference gather (one fancy index over the
  (B, T) rows, numpy mirror in the loader), the slice gather with the mirror in the loader, and
  what training runs (slice gather; the mirror deferred to ``on_after_batch_transfer``, timed
  separately on CPU tensors and, with CUDA, on the GPU).

The result is printed and written (atomically) to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

from callbacks.atomic_io import atomic_write_text
from datamodules.coco import CocoKeypoints
from datamodules.image_io import read_image
from datamodules.sequence_cache import SequenceCache
from datamodules.skeleton import H36M
from datamodules.synthetic_coco import generate_split
from datamodules.windows import (
    FlipAt,
    Gather,
    PoseWindowDataset,
    apply_pending_flips,
    build_samples,
    collate_batched,
)

COCO_IMAGE_WH = (640, 480)  # the typical COCO 2017 image size
H36M_TRAIN_FRAMES = 1_559_752  # frames of S1, S5-S8 (all cameras) in the VideoPose3D files


def coco_loader_rate(samples: int = 300, images: int = 24, workers: int = 16) -> dict:
    """COCO training samples per CPU-second in this process, decode share, projection."""
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory(prefix="coco-loader-bench-") as tmp:
        root = Path(tmp)
        coco = generate_split(root, "train", images, seed=0, size_wh=COCO_IMAGE_WH)
        (root / "annotations").mkdir()
        (root / "annotations" / "person_keypoints_train2017.json").write_text(json.dumps(coco))
        ds = CocoKeypoints(root, "train", (192, 256), augment=True)
        for i in range(min(5, len(ds))):  # warm-up: page cache, lazy imports
            ds[i]
        t0 = time.process_time()
        for i in range(samples):
            ds[i % len(ds)]
        per_sample = (time.process_time() - t0) / samples
        t0 = time.process_time()
        for i in range(samples):
            read_image(ds.image_path(i % len(ds)))
        decode = (time.process_time() - t0) / samples
        size = float(np.mean([p.stat().st_size for p in (root / "train2017").iterdir()]))
    rate = 1.0 / per_sample
    return {"samples": samples, "image_wh": list(COCO_IMAGE_WH), "mean_jpeg_bytes": size,
            "per_worker_samples_per_cpu_s": rate, "decode_ms": decode * 1e3,
            "rest_ms": (per_sample - decode) * 1e3, "workers": workers,
            "projected_samples_per_s": rate * workers}  # fmt: skip


# Window loader variants, side by side: (gather, flip_at) of PoseWindowDataset.
WINDOW_ROWS: dict[str, tuple[Gather, FlipAt]] = {
    "reference": ("rows", "loader"),  # one fancy index over (B, T) rows, numpy flip (before)
    "slices, flip in loader": ("slices", "loader"),
    "training": ("slices", "transfer"),  # what the DataModules run; flip on the device
}


def _time_hook(batch: dict, device: str, repeats: int) -> float:
    """Median seconds of ``apply_pending_flips`` on ``batch`` moved to ``device``."""
    times = []
    for _ in range(repeats + 1):
        b = {k: v.to(device, copy=True) for k, v in batch.items()}
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        apply_pending_flips(b, H36M)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))  # the first call warms up


def window_loader_rate(
    frames: int = 243,
    batch: int = 1024,
    batches: int = 30,
    total_frames: int = H36M_TRAIN_FRAMES,
    seq_len: int = 2_000,
    *,
    rows: tuple[str, ...] = tuple(WINDOW_ROWS),
) -> dict:
    """Training windows per second of ``PoseWindowDataset`` through a DataLoader, one process,
    for each of ``rows`` (``WINDOW_ROWS``). The top-level rates are the "training" row's: its
    loader alone, plus ``hook_cpu_ms`` (the deferred mirror, ``apply_pending_flips``, timed on CPU
    tensors) and, with CUDA, ``hook_cuda_ms`` on the GPU; ``windows_per_s_cpu_hook`` is the
    rate with the mirror on this CPU."""
    n_seq = total_frames // seq_len
    rng = np.random.default_rng(0)
    n = n_seq * seq_len
    cache = SequenceCache(
        folder=Path("in-memory"),
        pos2d=rng.standard_normal((n, 17, 2), dtype=np.float32),
        pos3d=rng.standard_normal((n, 17, 3), dtype=np.float32),
        offsets=np.arange(n_seq, dtype=np.int64) * seq_len,
        lengths=np.full(n_seq, seq_len, dtype=np.int64),
        meta={"sequences": [{} for _ in range(n_seq)]},
    )
    seq, frame = build_samples(cache.lengths)
    res: dict = {"frames": frames, "batch": batch, "batches": batches, "cache_frames": n,
                 "rows": {}}  # fmt: skip
    for name in rows:
        gather, flip_at = WINDOW_ROWS[name]
        ds = PoseWindowDataset("in-memory", seq, frame, np.zeros(n_seq, np.int64), frames, H36M,
                               flip_prob=0.5, cache=cache, flip_at=flip_at,
                               gather=gather)  # fmt: skip
        loader = DataLoader(ds, batch_size=batch, shuffle=True, collate_fn=collate_batched)
        it = iter(loader)
        last = next(it)  # warm-up
        t0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(batches):
            last = next(it)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        row = {"gather": gather, "flip_at": flip_at, "windows_per_s": batch * batches / wall,
               "windows_per_cpu_s": batch * batches / cpu}  # fmt: skip
        if flip_at == "transfer":
            hook = _time_hook(last, "cpu", 3)
            row["hook_cpu_ms"] = hook * 1e3
            row["windows_per_s_cpu_hook"] = batch / (wall / batches + hook)
            if torch.cuda.is_available():
                row["hook_cuda_ms"] = _time_hook(last, "cuda", 10) * 1e3
        res["rows"][name] = row
    main_row = res["rows"].get("training") or next(iter(res["rows"].values()))
    res.update({k: v for k, v in main_row.items() if k not in ("gather", "flip_at")})
    if "reference" in res["rows"] and "training" in res["rows"]:
        ref = res["rows"]["reference"]
        res["speedup_vs_reference"] = main_row["windows_per_s"] / ref["windows_per_s"]
        res["speedup_vs_reference_cpu_s"] = main_row["windows_per_cpu_s"] / ref["windows_per_cpu_s"]
    return res


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m datamodules.loader_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="fewer samples")
    ap.add_argument("--workers", type=int, default=16, help="workers of the COCO projection")
    ap.add_argument("--frames", type=int, default=243, help="3D window length")
    ap.add_argument("--only", choices=["coco", "windows"], help="one loader only")
    ap.add_argument("--no-reference", dest="reference", action="store_false",
                    help="3D windows: the training loader only, no before/after rows")  # fmt: skip
    ap.add_argument("--json", default="runs/bench/loaders.json", help="result file")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    res: dict = {"torch": torch.__version__, "opencv": cv2.__version__}
    if a.only != "windows":
        c = coco_loader_rate(60 if a.quick else 300, 8 if a.quick else 24, a.workers)
        res["coco"] = c
        w, h = c["image_wh"]
        print(f"COCO training loader (decode + augmentation + heatmaps, 256×192 crops from "
              f"{w}×{h} JPEGs): {c['per_worker_samples_per_cpu_s']:.0f} "
              f"samples/CPU-s per worker (decode {c['decode_ms']:.2f} ms + rest "
              f"{c['rest_ms']:.2f} ms); × {c['workers']} workers ≈ "
              f"{c['projected_samples_per_s']:.0f} samples/s", flush=True)  # fmt: skip
    if a.only != "coco":
        rows = tuple(WINDOW_ROWS) if a.reference else ("training",)
        w = window_loader_rate(a.frames, batches=8 if a.quick else 30, rows=rows)
        res["windows"] = w
        print(f"3D window loader, T={w['frames']}, batch {w['batch']}, one process:")
        for name, r in w["rows"].items():
            line = (f"  {name:<24} {r['windows_per_s']:>8.0f} windows/s "
                    f"({r['windows_per_cpu_s']:.0f} per CPU-s)")  # fmt: skip
            if "hook_cpu_ms" in r:
                line += (f"; the deferred mirror takes {r['hook_cpu_ms']:.1f} ms/batch on CPU "
                         f"tensors ({r['windows_per_s_cpu_hook']:.0f} windows/s with it on this "
                         "CPU)")  # fmt: skip
                if "hook_cuda_ms" in r:
                    line += f", {r['hook_cuda_ms']:.2f} ms on {torch.cuda.get_device_name()}"
            print(line, flush=True)
        if "speedup_vs_reference" in w:
            print(f"  training / reference: ×{w['speedup_vs_reference']:.2f} windows/s, "
                  f"×{w['speedup_vs_reference_cpu_s']:.2f} per CPU-s", flush=True)  # fmt: skip
    out = Path(a.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(res, indent=1) + "\n")
    print(f"wrote {out}")
    return res


if __name__ == "__main__":
    main()
