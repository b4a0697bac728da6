"""Augmentation streams differ between DDP ranks (and workers) and repeat with the same seed.

Every rank trains on identical samples (``tests/ddp_seed_probe.py``), so with the streams of
``datamodules/sample_rng.py`` the ranks' augmented 2D crops and 3D flips differ; before, both
ranks drew the same crop and flip for their k-th sample.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch_lightning import seed_everything

PROBE = str(Path(__file__).with_name("ddp_seed_probe.py"))


def _env() -> dict:
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    env.pop("MASTER_PORT", None)
    return env


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_ddp_ranks_draw_different_augmentations_and_a_rerun_the_same(tmp_path: Path):
    sys.path.insert(0, str(Path(__file__).parent))
    from ddp_seed_probe import write_fixture

    coco, h36m, out = tmp_path / "coco", tmp_path / "h36m", tmp_path / "draws.json"
    write_fixture(coco, h36m)
    res = subprocess.run([sys.executable, PROBE, str(coco), str(h36m), str(out), "2"],
                         env=_env(), capture_output=True, text=True, timeout=280)  # fmt: skip
    assert res.returncode == 0, res.stderr[-4000:]
    fits = [json.loads(Path(f"{out}.rank{r}").read_text()) for r in (0, 1)]
    for rank in (0, 1):
        assert fits[rank][0] == fits[rank][1]  # rerun with the same seed: the same draws
    steps = list(zip(fits[0][0], fits[1][0], strict=True))
    assert len(steps) >= 4 and all(a["rank"] == 0 and b["rank"] == 1 for a, b in steps)
    for a, b in steps:  # identical samples, different augmentation on every step
        assert not set(a["crops"]) & set(b["crops"]), (a, b)
    flips = np.array([[a["flips"], b["flips"]] for a, b in steps])  # (steps, rank, batch)
    assert (flips[:, 0] != flips[:, 1]).mean() > 0.25  # independent streams: ~50 % differ
    assert 0.25 < flips.mean() < 0.75  # flip_prob 0.5


def test_rank_changes_the_stream_and_the_seed_repeats_it(tmp_path):
    """The per-rank path without processes: the same seed and sample on two ranks."""
    from datamodules.sample_rng import sample_rng

    def draws(rank: int) -> list[float]:
        seed_everything(7)
        return [float(sample_rng(rank).random()) for _ in range(4)]

    assert draws(0) == draws(0) and draws(1) == draws(1)
    assert all(a != b for a, b in zip(draws(0), draws(1), strict=True))
    seed_everything(7)
    torch_before = torch.get_rng_state()
    sample_rng(1)
    assert not torch.equal(torch_before, torch.get_rng_state())  # resume: it is the torch RNG
