"""``python -m pose3d fit|validate|test|predict --config configs/pose3d/<name>.yaml``.

The data module is chosen in the YAML (``data.class_path``): ``datamodules.h36m.H36MDataModule``
(Human3.6M, or the synthetic stand-in with ``synthetic: true``) or
``datamodules.mpi_inf_3dhp.MPIINF3DHPDataModule``. ``data.frames`` also sizes the model.

A missing dataset (or checkpoint) is reported as one error message, without a traceback, and the
command exits with status 2; set ``POSE_TRACEBACK=1`` to see the traceback.
"""

from __future__ import annotations

import sys

import pytorch_lightning as pl

from callbacks.cli import PoseCLI, exit_on_missing_files
from callbacks.prediction_writer import PoseSequenceWriter
from pose3d.checkpoint import architecture_args
from pose3d.module import LiftingModule

SYNTHETIC_HINT = (
    "Quick start without a dataset: make train-3d DATA=synthetic "
    "(python -m pose3d fit --config configs/pose3d/synthetic.yaml)."
)


def main(args: list[str] | None = None) -> PoseCLI:
    # validate/test/predict build the model the --ckpt_path checkpoint records (e.g. one
    # converted from PoseFormer by pose3d.convert), whatever architecture the config names.
    extra = architecture_args(sys.argv[1:] if args is None else list(args))
    if extra:
        args = (sys.argv[1:] if args is None else list(args)) + extra
        print("model architecture from the checkpoint: " + " ".join(extra))
    # PoseCLI directly (not run_cli) to pass subclass_mode_data: one entry for every dataset.
    return PoseCLI(
        LiftingModule,
        pl.LightningDataModule,
        links=[("data.init_args.frames", "model.frames")],
        monitor="val/mpjpe",
        mode="min",
        project="attnpose-3d",
        checkpoint_kinds=("lightning_3d",),
        prediction_writer=PoseSequenceWriter,
        subclass_mode_data=True,
        args=args,
    )


def cli(args: list[str] | None = None) -> int:
    """Console entry: :func:`main`, with missing files reported as one message (exit status 2)."""
    return exit_on_missing_files(main, args, SYNTHETIC_HINT)


if __name__ == "__main__":
    sys.exit(cli())
