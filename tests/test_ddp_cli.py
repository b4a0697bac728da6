"""Two-process DDP (gloo, CPU) through the real CLIs, and DDP metrics == single-process metrics.

Each test runs ``python -m pose3d|pose2d`` in subprocesses (``strategy=ddp`` re-executes the
command line per rank, which is the production path), then validates the same checkpoint with
``devices=2`` and ``devices=1`` and compares the logged metrics. Plus the non-finite guard under
DDP with the NaN on one rank only.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

CPU = ["--trainer.accelerator=cpu", "--trainer.enable_progress_bar=false"]
DDP = ["--trainer.devices=2", "--trainer.strategy=ddp"]
ONE = ["--trainer.devices=1"]


def _run(args: list[str], timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    env.pop("MASTER_PORT", None)  # let Lightning pick a free port per run
    proc = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{' '.join(args)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def _metrics(run_dir: Path, stage: str = "validate") -> dict[str, float]:
    return json.loads((run_dir / "metrics.json").read_text())[stage]


def _assert_same(a: dict[str, float], b: dict[str, float], keys: list[str]) -> None:
    for k in keys:
        assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-6), k


# -- 3D ---------------------------------------------------------------------------------------
POSE3D = [
    "-m",
    "pose3d",
    "--config",
    "configs/pose3d/synthetic.yaml",
    "--data.frames=9",
    "--data.synthetic_frames=40",
    "--data.eval_batch_size=256",
    "--data.batch_size=64",
    "--model.spatial_dim=8",
    "--model.spatial_depth=1",
    "--model.temporal_depth=1",
    "--model.spatial_heads=2",
    "--model.temporal_heads=2",
    "--model.sam_groups=2",
]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pose3d_ddp_fit_and_metrics_match_single_process(tmp_path: Path) -> None:
    data = f"--data.root={tmp_path / 'data'}"
    args = [POSE3D[0], POSE3D[1], "fit", *POSE3D[2:], data, *CPU]
    fit_dir = tmp_path / "fit"
    _run(
        [
            *args,
            *DDP,
            f"--run.dir={fit_dir}",
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=3",
            "--trainer.limit_val_batches=1",
            "--data.test_subjects=[S9]",
            "--trainer.precision=bf16-mixed",  # PRECISION=bf16-mixed path, DDP + autocast
        ]
    )
    last = fit_dir / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True, map_location="cpu")
    assert ckpt["global_step"] == 3 and ckpt["hyper_parameters"]["frames"] == 9
    assert math.isfinite(_metrics(fit_dir)["val/mpjpe"])
    assert len(list((fit_dir / "csv").glob("version_*"))) == 1  # rank 0 logs alone
    info = json.loads((fit_dir / "run_info.json").read_text())
    assert info["world_size"] == 2 and info["precision"] == "bf16-mixed"

    val = [POSE3D[0], POSE3D[1], "validate", *POSE3D[2:], data, *CPU, f"--ckpt_path={last}"]
    _run([*val, *DDP, f"--run.dir={tmp_path / 'v2'}"])
    _run([*val, *ONE, f"--run.dir={tmp_path / 'v1'}"])
    two, one = _metrics(tmp_path / "v2"), _metrics(tmp_path / "v1")
    actions = [k for k in one if k.startswith("val/mpjpe/")]
    assert len(actions) == 15 and one["val/frames"] == two["val/frames"] > 0
    _assert_same(two, one, ["val/mpjpe", "val/p_mpjpe", "val/mpjve", *actions])
    assert (tmp_path / "v2" / "val_per_group.md").read_text().count("\n") == 15 + 2


# -- 2D ---------------------------------------------------------------------------------------
POSE2D = [
    "-m",
    "pose2d",
    "--config",
    "configs/pose2d/synthetic.yaml",
    "--data.input_size=[64,64]",
    "--data.batch_size=4",
    "--data.num_workers=0",
    "--data.synthetic_num_train=16",
    "--data.synthetic_num_val=9",
    "--model.width=8",
    "--model.stem_channels=16",
    "--trainer.check_val_every_n_epoch=1",
]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pose2d_ddp_fit_and_metrics_match_single_process(tmp_path: Path) -> None:
    data = f"--data.root={tmp_path / 'data'}"
    fit_dir = tmp_path / "fit"
    _run(
        [
            *POSE2D[:2],
            "fit",
            *POSE2D[2:],
            data,
            *CPU,
            *DDP,
            f"--run.dir={fit_dir}",
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1",
        ]
    )
    last = fit_dir / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True, map_location="cpu")["global_step"] == 2
    keys = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
    assert all(math.isfinite(_metrics(fit_dir)[f"val/{k}"]) for k in keys)

    val = [*POSE2D[:2], "validate", *POSE2D[2:], data, *CPU, f"--ckpt_path={last}"]
    _run([*val, *DDP, f"--run.dir={tmp_path / 'v2'}"])
    _run([*val, *ONE, f"--run.dir={tmp_path / 'v1'}"])
    two, one = _metrics(tmp_path / "v2"), _metrics(tmp_path / "v1")
    _assert_same(two, one, [f"val/{k}" for k in keys])


# -- non-finite guard under DDP ---------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_nonfinite_guard_stops_both_ranks(tmp_path: Path) -> None:
    toy = str(Path(__file__).with_name("callbacks_toy.py"))
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    env.pop("MASTER_PORT", None)
    args = [sys.executable, toy, "fit", f"--run.dir={tmp_path}", *CPU, *DDP]
    args += ["--trainer.max_epochs=3", "--model.nan_at_step=5", "--model.nan_rank=1"]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=150)
    assert proc.returncode != 0
    assert "FloatingPointError" in proc.stderr and "global step 5" in proc.stderr
    ckpt = torch.load(tmp_path / "checkpoints" / "nonfinite.ckpt", weights_only=True)
    assert ckpt["global_step"] == 5
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
