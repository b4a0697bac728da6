"""``python -m pose2d fit|validate|test|predict --config configs/pose2d/<name>.yaml``.

A missing dataset (or checkpoint, or detection file) is reported as one error message, without a
traceback, and the command exits with status 2; set ``POSE_TRACEBACK=1`` to see the traceback.
"""

from __future__ import annotations

import sys

from callbacks.cli import exit_on_missing_files, run_cli
from callbacks.cli_args import flag_value, subcommand
from callbacks.prediction_writer import CocoKeypointsWriter
from datamodules.coco import CocoKeypointsDataModule
from pose2d.module import HeatmapModule
from pose2d.official import is_plain_hrnet, official_eval_args

SYNTHETIC_HINT = (
    "Quick start without COCO: make data-2d && make train-2d DATA=synthetic "
    "(python -m pose2d fit --config configs/pose2d/synthetic.yaml)."
)


def main(args: list[str] | None = None):
    argv = sys.argv[1:] if args is None else list(args)
    ckpt = flag_value(argv, "--ckpt_path")
    if subcommand(argv) in ("validate", "test", "predict") and ckpt and is_plain_hrnet(ckpt):
        args = official_eval_args(argv, ckpt)  # an official pose_hrnet_*.pth as it is
    return run_cli(
        HeatmapModule,
        CocoKeypointsDataModule,
        args=args,
        monitor="val/AP",
        mode="max",
        project="attnpose-2d",
        checkpoint_kinds=("lightning_2d",),
        prediction_writer=CocoKeypointsWriter,
    )


def cli(args: list[str] | None = None) -> int:
    """Console entry: :func:`main`, with missing files reported as one message (exit status 2)."""
    return exit_on_missing_files(
        main,
        args,
        SYNTHETIC_HINT,
        lambda msg: ("COCO" in msg or "detection" in msg) and "synthetic" not in msg,
    )


if __name__ == "__main__":
    sys.exit(cli())
