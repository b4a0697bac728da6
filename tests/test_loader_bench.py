"""The loader benchmark measures the real training datasets and writes its figures."""

from __future__ import annotations

import json

import pytest

from datamodules.loader_bench import WINDOW_ROWS, coco_loader_rate, main, window_loader_rate


def test_window_loader_rate_counts_full_batches() -> None:
    r = window_loader_rate(frames=27, batch=64, batches=3, total_frames=20_000, seq_len=500)
    assert r["cache_frames"] == 20_000 and r["windows_per_s"] > 0 and r["windows_per_cpu_s"] > 0
    assert set(r["rows"]) == set(WINDOW_ROWS)  # reference and training side by side
    train = r["rows"]["training"]
    assert (train["gather"], train["flip_at"]) == ("slices", "transfer")
    assert r["windows_per_s"] == train["windows_per_s"] and train["hook_cpu_ms"] > 0
    assert (
        r["speedup_vs_reference"]
        == train["windows_per_s"] / r["rows"]["reference"]["windows_per_s"]
    )


def test_coco_loader_rate_projection() -> None:
    r = coco_loader_rate(samples=6, images=2, workers=16)
    assert r["per_worker_samples_per_cpu_s"] > 0 and r["decode_ms"] > 0
    assert r["projected_samples_per_s"] == pytest.approx(16 * r["per_worker_samples_per_cpu_s"])
    assert r["image_wh"] == [640, 480] and r["mean_jpeg_bytes"] > 10_000


def test_main_writes_json(tmp_path, monkeypatch) -> None:
    import datamodules.loader_bench as lb

    monkeypatch.setattr(lb, "H36M_TRAIN_FRAMES", 10_000)
    monkeypatch.setattr(lb.window_loader_rate, "__defaults__", (243, 32, 30, 10_000, 1_000))
    out = tmp_path / "l.json"
    res = main(["--only", "windows", "--quick", "--json", str(out)])
    assert json.loads(out.read_text()) == res and "coco" not in res
