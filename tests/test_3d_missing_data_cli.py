"""A missing dataset gives one message (no traceback) naming the files and the synthetic route."""

from __future__ import annotations

import pytest

from pose3d.__main__ import cli


def test_missing_h36m_is_one_clear_error(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.delenv("POSE_TRACEBACK", raising=False)
    root = tmp_path / "h36m"
    rc = cli(["fit", "--config", "configs/pose3d/paper.yaml", f"--data.init_args.root={root}",
              "--data.init_args.frames=243", "--trainer.accelerator=cpu",
              "--trainer.fast_dev_run=true", f"--run.dir={tmp_path / 'run'}"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" not in err
    assert err.count("error:") == 1
    for name in ("data_3d_h36m.npz", "data_2d_h36m_cpn_ft_h36m_dbb.npz", str(root)):
        assert name in err
    assert "make train-3d DATA=synthetic" in err


def test_traceback_on_request(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("POSE_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError, match="data_3d_h36m.npz"):
        cli(["fit", "--config", "configs/pose3d/paper.yaml",
             f"--data.init_args.root={tmp_path / 'h36m'}", "--trainer.accelerator=cpu",
             "--trainer.fast_dev_run=true", f"--run.dir={tmp_path / 'run'}"])  # fmt: skip


def test_missing_data_stops_before_a_run_or_wandb_run_exists(tmp_path, monkeypatch, capsys):
    """The data check runs before the logger: no run folder, no (offline) W&B run is left."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("POSE_TRACEBACK", raising=False)
    run_dir = tmp_path / "run"
    rc = cli(["fit", "--config", "configs/pose3d/3dhp.yaml",
              f"--data.init_args.root={tmp_path / 'mpi'}", "--trainer.accelerator=cpu",
              f"--run.dir={run_dir}"])  # fmt: skip
    assert rc == 2
    assert "data_train_3dhp.npz" in capsys.readouterr().err
    assert not run_dir.exists()
