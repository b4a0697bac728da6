"""``python -m pose2d fit|validate|test|predict --config configs/pose2d/<name>.yaml``.

A missing dataset (or checkpoint, or detection file) is reported as one error message, without a
traceback, and the command exits with status 2; set ``POSE_TRACEBACK=1`` to see the traceback.
"""

from __future__ import annotations

import os
import sys

from callbacks.cli import run_cli
from datamodules.coco import CocoKeypointsDataModule
from pose2d.module import HeatmapModule

SYNTHETIC_HINT = (
    "Quick start without COCO: make data-2d && make train-2d DATA=synthetic "
    "(python -m pose2d fit --config configs/pose2d/synthetic.yaml)."
)


def main(args: list[str] | None = None):
    return run_cli(
        HeatmapModule,
        CocoKeypointsDataModule,
        args=args,
        monitor="val/AP",
        mode="max",
        project="attnpose-2d",
    )


def cli(args: list[str] | None = None) -> int:
    """Console entry: :func:`main`, with missing files reported as one message (exit status 2)."""
    try:
        main(args)
    except FileNotFoundError as e:
        if os.environ.get("POSE_TRACEBACK"):
            raise
        msg = str(e)
        about_data = ("COCO" in msg or "detection" in msg) and "synthetic" not in msg
        hint = f"\n{SYNTHETIC_HINT}" if about_data else ""
        print(f"error: {msg}{hint}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
