"""Atomic checkpoints, the run-folder lock and the resume/rerun policy of the shared CLI."""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import callbacks.checkpoint_io as checkpoint_io
from callbacks.checkpoint_io import AtomicCheckpointIO, remove_stale_temps, unloadable_reason
from callbacks.cli import exit_on_missing_files
from callbacks.run_folder import LOCK, RunFolderError, RunLock, _start_time, resolve_last

sys.path.insert(0, str(Path(__file__).parent))
from callbacks_toy import main as toy  # noqa: E402


def _args(run_dir: Path, *extra: str) -> list[str]:
    return [
        "fit", f"--run.dir={run_dir}", "--trainer.max_epochs=1", "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        "--trainer.num_sanity_val_steps=0", "--data.n_train=16", "--data.n_val=8", *extra,
    ]  # fmt: skip


def _cli(capsys, args: list[str]) -> tuple[int, str]:
    rc = exit_on_missing_files(toy, args, "")
    return rc, capsys.readouterr().err


def _disk_full(obj, f) -> None:
    f.write(b"PK\x03\x04 half a checkpoint")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_atomic_save_keeps_the_previous_checkpoint_when_the_disk_fills(tmp_path, monkeypatch):
    io, path = AtomicCheckpointIO(), tmp_path / "ckpts" / "last.ckpt"
    io.save_checkpoint({"epoch": 1, "w": torch.arange(4.0)}, path)
    before = path.read_bytes()
    monkeypatch.setattr(checkpoint_io.torch, "save", _disk_full)
    with pytest.raises(
        OSError, match="No space left on device \\(the checkpoints written before are untouched\\)"
    ):
        io.save_checkpoint({"epoch": 2, "w": torch.zeros(4)}, path)
    assert path.read_bytes() == before and unloadable_reason(path) is None
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # no temp left
    assert torch.load(path, weights_only=True)["epoch"] == 1


def test_unloadable_and_stale_temps(tmp_path):
    good = tmp_path / "a.ckpt"
    torch.save({"x": torch.ones(1000)}, good)
    assert unloadable_reason(good) is None
    cut = tmp_path / "b.ckpt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert "truncated" in unloadable_reason(cut)
    (tmp_path / "c.ckpt").write_bytes(b"")
    assert unloadable_reason(tmp_path / "c.ckpt") == "empty file"
    (tmp_path / "last.ckpt.tmp").write_bytes(b"partial")
    assert [p.name for p in remove_stale_temps(tmp_path)] == ["last.ckpt.tmp"]
    assert not (tmp_path / "last.ckpt.tmp").exists()


def test_resolve_last_skips_unloadable_and_stops_without_any(tmp_path):
    with pytest.raises(RunFolderError, match="holds no checkpoint, so there is nothing to resume"):
        resolve_last(tmp_path / "checkpoints")
    older = tmp_path / "best-epoch000.ckpt"
    torch.save({"epoch": 0}, older)
    time.sleep(0.01)
    (tmp_path / "last.ckpt").write_bytes(b"PK\x03\x04 truncated")
    path, bad = resolve_last(tmp_path)
    assert path == older and bad[0].startswith("last.ckpt (truncated")
    older.write_bytes(b"")
    with pytest.raises(
        RunFolderError, match=r"no checkpoint .* can be loaded: .*last.ckpt \(truncated"
    ):
        resolve_last(tmp_path)


def test_lock_refuses_a_live_holder_and_takes_over_a_stale_one(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        holder = {"pid": sleeper.pid, "start": _start_time(sleeper.pid), "time": time.time()}
        (tmp_path / LOCK).write_text(json.dumps(holder))
        with pytest.raises(RunFolderError, match=f"in use by another run \\(pid {sleeper.pid}"):
            RunLock(tmp_path).acquire()
        # the same pid with another start time: the pid was reused, the lock is stale
        (tmp_path / LOCK).write_text(json.dumps({**holder, "start": "1"}))
        lock = RunLock(tmp_path)
        lock.acquire()
        lock.release()
    finally:
        sleeper.kill()
        sleeper.wait()
    (tmp_path / LOCK).write_text(json.dumps(holder))  # the process is gone now
    lock = RunLock(tmp_path)
    lock.acquire()
    assert json.loads((tmp_path / LOCK).read_text())["pid"] != sleeper.pid
    lock.release()
    assert not (tmp_path / LOCK).exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished one-epoch toy run (copied by the tests that change it)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    cli = toy(_args(run))
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    assert (run / "checkpoints" / "last.ckpt").is_file() and not (run / LOCK).exists()
    return run


def test_cli_resume_without_checkpoint_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("POSE_TRACEBACK", raising=False)
    rc, err = _cli(capsys, _args(tmp_path / "run", "--ckpt_path=last"))
    assert rc == 2 and err.count("\n") == 1 and "nothing to resume" in err
    assert not (tmp_path / "run").exists()


def test_cli_rerun_and_concurrent_run_are_one_line(finished_run, capsys, monkeypatch):
    monkeypatch.delenv("POSE_TRACEBACK", raising=False)
    last = finished_run / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    rc, err = _cli(capsys, _args(finished_run))
    assert rc == 2 and err.count("\n") == 1 and "already holds a run" in err
    assert "--run.name=" in err and "RESUME=1" in err and last.read_bytes() == before

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        info = {"pid": sleeper.pid, "start": _start_time(sleeper.pid), "time": time.time()}
        (finished_run / LOCK).write_text(json.dumps(info))
        rc, err = _cli(capsys, _args(finished_run, "--ckpt_path=last", "--trainer.max_epochs=2"))
        assert rc == 2 and err.count("\n") == 1
        assert f"in use by another run (pid {sleeper.pid}" in err
    finally:
        sleeper.kill()
        sleeper.wait()
        (finished_run / LOCK).unlink()
    assert last.read_bytes() == before


def test_cli_disk_full_then_truncated_last_resumes(finished_run, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    last = run / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    # disk full while writing the next checkpoint: one line, exit 2, last.ckpt stays intact
    monkeypatch.delenv("POSE_TRACEBACK", raising=False)
    monkeypatch.setattr(checkpoint_io.torch, "save", _disk_full)
    rc, err = _cli(capsys, _args(run, "--ckpt_path=last", "--trainer.max_epochs=2"))
    assert rc == 2 and err.count("\n") == 1 and "No space left on device" in err, err
    assert "written before are untouched" in err and "RESUME=1" in err
    monkeypatch.undo()
    assert last.read_bytes() == before and not list(run.glob("checkpoints/*.tmp"))

    # a truncated last.ckpt: said so, set aside, resumed from the newest loadable one
    last.write_bytes(before[: len(before) // 3])
    cli = toy(_args(run, "--ckpt_path=last", "--trainer.max_epochs=2"))
    err = capsys.readouterr().err
    assert "cannot load last.ckpt (truncated" in err and "resuming from" in err
    assert (run / "checkpoints" / "last.ckpt.unloadable").is_file()
    assert not list(run.glob("checkpoints/*-v1.ckpt"))
    assert cli.trainer.current_epoch == 2
    assert torch.load(last, weights_only=True)["epoch"] == 1
