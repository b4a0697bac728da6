"""``python -m pose2d fit|validate|test|predict --config configs/pose2d/<name>.yaml``."""

from __future__ import annotations

from callbacks.cli import run_cli
from datamodules.coco import CocoKeypointsDataModule
from pose2d.module import HeatmapModule


def main(args: list[str] | None = None):
    return run_cli(
        HeatmapModule,
        CocoKeypointsDataModule,
        args=args,
        monitor="val/AP",
        mode="max",
        project="attnpose-2d",
    )


if __name__ == "__main__":
    main()
