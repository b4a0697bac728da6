"""End-to-end: ``python -m pose2d fit`` on a freshly generated tiny synthetic COCO set."""

from __future__ import annotations

import json

import pytest

from pose2d.__main__ import main


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_cli_fit_on_synthetic_coco_writes_ap_and_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    root, run = tmp_path / "syn", tmp_path / "run"
    main([
        "fit", "--config", "configs/pose2d/synthetic.yaml",
        f"--data.root={root}", "--data.synthetic_num_train=6", "--data.synthetic_num_val=3",
        "--data.batch_size=4", "--data.num_workers=0", "--data.input_size=[64,64]",
        "--model.width=8", "--model.num_blocks=1", "--model.cam_blocks=1",
        "--trainer.max_epochs=1", "--trainer.check_val_every_n_epoch=1",
        "--trainer.enable_progress_bar=false", f"--run.dir={run}",
    ])  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())["validate"]
    assert 0.0 <= metrics["val/AP"] <= 1.0 and metrics["val/loss"] > 0
    assert (run / "checkpoints" / "last.ckpt").is_file()

    from pose2d.checkpoint import load_detector

    net = load_detector(run / "checkpoints" / "last.ckpt")
    assert (
        net.final_layer.in_channels == 8 and len(net.cam_state_keys()) == 3 * 4
    )  # 3 sites × 1 block


def test_cli_missing_coco_is_one_message(tmp_path, capsys):
    from pose2d.__main__ import cli

    status = cli([
        "fit", "--config", "configs/pose2d/synthetic.yaml", f"--data.root={tmp_path / 'coco'}",
        "--data.synthetic=false", "--data.num_workers=0", "--model.width=8",
        "--model.num_blocks=1", "--model.cam_blocks=1", "--trainer.logger=false",
        "--trainer.fast_dev_run=true", f"--run.dir={tmp_path / 'run'}",
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2
    assert "Traceback" not in err and err.count("error:") == 1
    assert "person_keypoints_train2017.json" in err and "DATA=synthetic" in err


def test_missing_coco_leaves_no_run_folder(tmp_path, monkeypatch, capsys):
    from pose2d.__main__ import cli

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("POSE_TRACEBACK", raising=False)
    run_dir = tmp_path / "run"
    rc = cli(["fit", "--config", "configs/pose2d/w32_256x192.yaml",
              f"--data.root={tmp_path / 'coco'}", "--trainer.accelerator=cpu",
              f"--run.dir={run_dir}"])  # fmt: skip
    assert rc == 2
    assert "person_keypoints_train2017.json" in capsys.readouterr().err
    assert not run_dir.exists()
