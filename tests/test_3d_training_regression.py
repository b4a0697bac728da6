"""Slow regression test: the PoseFormer configuration still learns as the official training does.

Runs ``python -m pose3d fit --config configs/pose3d/poseformer.yaml`` in-process (so the recipe,
the flip mode and every trainer setting come from the config file) on the synthetic Human3.6M
stand-in, shrunk to about 50 s of CPU time (one thread, including data generation): width 8
(temporal width 136), 2 + 2 blocks, T = 9, batch 64, 40-frame sequences, 400 optimisation steps.
Only the size and the learning rate (2e-3 instead of 1e-4, so that 400 steps get somewhere)
differ from the config; AdamW with weight decay 0.1, the centre head, drop path 0.1, dropout 0,
every window as is and mirrored per epoch and flip test-time augmentation are the config's.

Thresholds: this test with the official behaviour (flip_mode=double, the commit that introduced
it) scored P1 = 78.3 mm (seed 42, one thread, deterministic; 77.6 mm with the predicted root
zeroed, eval_root=zero, the module's only reading before); it must stay within 15 % of that
and beat the training-mean-pose baseline (179.3 mm on this set) by a factor of two. A run with
300 steps at lr 1e-3 (100.6 mm) would fail both.
"""

from __future__ import annotations

import json

import pytest
import torch

from datamodules.h36m import H36MDataModule
from pose3d.__main__ import main
from pose3d.mean_pose import mean_pose_baseline

STEPS = 400
CALIBRATED_P1 = 78.3  # mm, measured once with the official behaviour (see docstring)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_poseformer_config_reaches_its_error_on_a_fixed_budget(tmp_path) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        root, run = tmp_path / "syn", tmp_path / "run"
        main([
            "fit", "--config", "configs/pose3d/poseformer.yaml",
            "--data.class_path=datamodules.h36m.H36MDataModule",
            f"--data.init_args.root={root}", "--data.init_args.synthetic=true",
            "--data.init_args.keypoints=synthetic_det", "--data.init_args.synthetic_frames=40",
            "--data.init_args.frames=9", "--data.init_args.batch_size=64",
            "--data.init_args.eval_batch_size=1024", "--data.init_args.num_workers=0",
            "--model.spatial_dim=8", "--model.spatial_depth=2", "--model.temporal_depth=2",
            "--model.spatial_heads=2", "--model.temporal_heads=4", "--model.lr=0.002",
            "--trainer.accelerator=cpu", "--trainer.devices=1", f"--trainer.max_steps={STEPS}",
            f"--trainer.val_check_interval={STEPS}", "--trainer.num_sanity_val_steps=0",
            "--trainer.enable_progress_bar=false", "--seed_everything=42", f"--run.dir={run}",
        ])  # fmt: skip
        p1 = json.loads((run / "metrics.json").read_text())["validate"]["val/mpjpe"]
        dm = H36MDataModule(root=str(root), keypoints="synthetic_det", synthetic=True,
                            synthetic_frames=40, frames=1, batch_size=8192, num_workers=0,
                            flip_augment=False)  # fmt: skip
        floor = float(mean_pose_baseline(dm)["mpjpe"])
    finally:
        torch.set_num_threads(before)
    print(f"P1 after {STEPS} steps: {p1:.1f} mm (mean-pose baseline {floor:.1f} mm)")
    assert p1 < floor / 2
    assert p1 < 1.15 * CALIBRATED_P1
