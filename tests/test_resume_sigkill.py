"""Kill a CLI training run with SIGKILL after its first checkpoint, resume it with
``--ckpt_path=last`` and check it ends exactly where an uninterrupted run ends (epoch, step,
optimizer, scheduler, RNG => identical weights), with checkpoints that load with
``weights_only=True``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from callbacks.checkpoint_io import unloadable_reason

TOY = str(Path(__file__).with_name("callbacks_toy.py"))
EPOCHS = 4
STEPS_PER_EPOCH = 8  # 64 samples / batch 8


def _cmd(run_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        TOY,
        "fit",
        f"--run.dir={run_dir}",
        f"--trainer.max_epochs={EPOCHS}",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.num_sanity_val_steps=0",
        *extra,
    ]


def _env() -> dict:
    return {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_sigkill_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "killed"
    # the reference, and the run we kill, must be slow enough to be killed mid-way
    slow = "--model.sleep_s=0.06"
    ref = subprocess.run(_cmd(ref_dir, slow), env=_env(), capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr[-3000:]

    proc = subprocess.Popen(
        _cmd(run_dir, slow), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "run finished before it could be killed: " + proc.stderr.read()
    time.sleep(0.3)  # let the atomic write finish (the file appears only once complete)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed_at = torch.load(last, weights_only=True, map_location="cpu")
    assert killed_at["epoch"] < EPOCHS - 1, "killed too late to test anything"

    res = subprocess.run(
        _cmd(run_dir, "--ckpt_path=last"), env=_env(), capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Restoring states from the checkpoint path" in res.stderr + res.stdout

    done = torch.load(last, weights_only=True, map_location="cpu")
    want = torch.load(ref_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert done["epoch"] == want["epoch"] == EPOCHS - 1
    assert done["global_step"] == want["global_step"] == EPOCHS * STEPS_PER_EPOCH
    sched, want_sched = done["lr_schedulers"][0], want["lr_schedulers"][0]
    assert sched["last_epoch"] == want_sched["last_epoch"] == EPOCHS
    assert sched["_last_lr"] == pytest.approx(want_sched["_last_lr"])
    assert done["optimizer_states"][0]["state"][0]["step"] == EPOCHS * STEPS_PER_EPOCH
    for key, value in want["state_dict"].items():
        torch.testing.assert_close(done["state_dict"][key], value, rtol=0, atol=0)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_sigkill_during_a_checkpoint_write_with_tmpdir_elsewhere(tmp_path: Path) -> None:
    """``TMPDIR`` on another filesystem (``/dev/shm``, tmpfs) than the run folder: a kill -9
    while a checkpoint is being written leaves the previous ``last.ckpt`` loadable, and
    ``--ckpt_path=last`` removes the stale temp and finishes the run."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test folder")
    tmpdir = Path(tempfile.mkdtemp(dir=shm))
    env = {**_env(), "TMPDIR": str(tmpdir)}
    run_dir = tmp_path / "run"
    ballast = (
        "--model.ballast_mb=50", "--data.n_train=16", "--data.n_val=8", "--trainer.max_epochs=2",
    )  # fmt: skip
    proc = subprocess.Popen(
        _cmd(run_dir, *ballast), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    ckpts = run_dir / "checkpoints"
    deadline = time.time() + 120
    try:
        while proc.poll() is None and time.time() < deadline:  # a write after the first one
            if (ckpts / "last.ckpt").exists() and list(ckpts.glob("*.ckpt.tmp")):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
        proc.wait(timeout=30)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    assert proc.returncode == -signal.SIGKILL, "no checkpoint write was caught"
    assert list(ckpts.glob("*.ckpt.tmp")), "killed outside a write"
    assert unloadable_reason(ckpts / "last.ckpt") is None
    before = torch.load(ckpts / "last.ckpt", weights_only=True, map_location="cpu")["epoch"]

    res = subprocess.run(
        _cmd(run_dir, *ballast, "--ckpt_path=last"), env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert not list(ckpts.glob("*.tmp")) and not list(ckpts.glob("*-v1.ckpt"))
    done = torch.load(ckpts / "last.ckpt", weights_only=True, map_location="cpu")
    assert before < done["epoch"] == 1
