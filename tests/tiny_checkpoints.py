"""Tiny untrained detector + lifter checkpoints in our Lightning layout, for inference tests."""

from __future__ import annotations

from pathlib import Path

import torch

from pose2d.hrnet import PoseHighResolutionNet
from pose3d.lifter import PoseLifter

DET_KW = dict(width=8, num_blocks=1, stage_modules=[1, 1, 1], stem_channels=8, cam_blocks=1)
LIFT_KW = dict(frames=3, spatial_dim=8, spatial_depth=1, temporal_depth=1, spatial_heads=2,
               temporal_heads=2)  # fmt: skip


def write_tiny_checkpoints(folder: Path) -> list[Path]:
    """``[2d.ckpt, 3d.ckpt]`` in ``folder``: seeded random weights, 64×64 detector input."""
    torch.manual_seed(0)
    out = []
    for name, net, hp in (("2d.ckpt", PoseHighResolutionNet(**DET_KW), DET_KW),
                          ("3d.ckpt", PoseLifter(**LIFT_KW), LIFT_KW)):  # fmt: skip
        sd = {f"model.{k}": v for k, v in net.state_dict().items()}
        meta = {"input_size": [64, 64]}
        torch.save({"state_dict": sd, "hyper_parameters": hp,
                    "datamodule_hyper_parameters": meta}, folder / name)  # fmt: skip
        out.append(folder / name)
    return out
