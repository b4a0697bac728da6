"""``THREADS=N`` reaches every make recipe (train-3d and eval-3d included), not only the 2D ones."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
@pytest.mark.parametrize(("threads", "expect"), [("3", "OMP=3 MKL=3"), (None, "OMP= MKL=")])
def test_threads_is_exported_to_every_recipe(threads, expect):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    probe = 'probe: ; @echo "OMP=$$OMP_NUM_THREADS MKL=$$MKL_NUM_THREADS"'
    args = ["make", "--no-print-directory", "-C", str(REPO), "--eval", probe, "probe"]
    out = subprocess.run(args + ([f"THREADS={threads}"] if threads else []), env=env,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert out.strip() == expect
    recipes = (REPO / "Makefile").read_text()
    assert "OMP_NUM_THREADS=$(THREADS)" not in recipes  # no per-target copies left to forget
