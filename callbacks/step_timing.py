"""Interleaved train-step timing shared by ``pose2d.bench`` and ``pose3d.bench``.

Rows (configurations) are built once, warmed up, then stepped in turn (one step of each per round)
so a load change on a shared machine hits every row alike. CUDA steps are timed with
``synchronize`` (wall clock) and report peak allocated bytes; CPU steps use this process's CPU time.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import torch


class TimedRow(Protocol):
    """What the harness needs of a row: a unique name and slots for its results."""

    name: str
    times: list[float]
    peak_bytes: int
    error: str


def timed_step(step: Callable[[], None], device: torch.device) -> tuple[float, int]:
    """Seconds of one ``step()`` (CUDA: synchronised wall clock; CPU: process CPU time) and
    peak allocated bytes (0 on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize(device)
        return time.perf_counter() - t0, torch.cuda.max_memory_allocated(device)
    t0 = time.process_time()
    step()
    return time.process_time() - t0, 0


def _out_of_memory(row: TimedRow, built: dict) -> None:
    row.error = "out of memory"
    built.pop(row.name, None)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def measure_interleaved(
    rows: Sequence[TimedRow],
    build: Callable[[TimedRow], Callable[[], None]],
    steps: int,
    warmup: int,
    device: torch.device,
) -> Sequence[TimedRow]:
    """Fill ``times``/``peak_bytes`` of every row (or ``error`` when it runs out of memory).

    ``build(row)`` returns the row's step callable (model, optimiser and inputs already made).
    """
    built: dict[str, Callable[[], None]] = {}
    for row in rows:
        try:
            built[row.name] = build(row)
            for _ in range(warmup):
                built[row.name]()
        except torch.OutOfMemoryError:
            _out_of_memory(row, built)
    for _ in range(steps):
        for row in rows:
            if row.name not in built:
                continue
            try:
                dt, peak = timed_step(built[row.name], device)
            except torch.OutOfMemoryError:
                _out_of_memory(row, built)
                continue
            row.times.append(dt)
            row.peak_bytes = max(row.peak_bytes, peak)
    built.clear()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def rate_summary(row: TimedRow, batch: int, unit: str) -> dict:
    """``{unit: median rate, unit_min, unit_max, peak_gib}`` of a measured row (samples/s)."""
    d: dict = {}
    if row.times:
        d[unit] = batch / statistics.median(row.times)
        d[f"{unit}_min"] = batch / max(row.times)
        d[f"{unit}_max"] = batch / min(row.times)
    d["peak_gib"] = row.peak_bytes / 2**30 if row.peak_bytes else None
    return d


def add_ratios(summary: list[dict], unit: str, denominator: str) -> list[dict]:
    """Set ``ratio`` = rate / the rate of the row named ``denominator`` (None where unknown)."""
    den = next((d.get(unit) for d in summary if d["row"] == denominator), None)
    for d in summary:
        d["ratio"] = d[unit] / den if den and unit in d else None
    return summary
