"""``python -m pose3d fit|validate|test|predict --config configs/pose3d/<name>.yaml``.

The data module is chosen in the YAML (``data.class_path``): ``datamodules.h36m.H36MDataModule``
(Human3.6M, or the synthetic stand-in with ``synthetic: true``) or
``datamodules.mpi_inf_3dhp.MPIINF3DHPDataModule``. ``data.frames`` also sizes the model.
"""

from __future__ import annotations

import pytorch_lightning as pl

from callbacks.cli import PoseCLI
from pose3d.module import LiftingModule


def main(args: list[str] | None = None) -> PoseCLI:
    # PoseCLI directly (not run_cli) to pass subclass_mode_data: one entry for every dataset.
    return PoseCLI(
        LiftingModule,
        pl.LightningDataModule,
        links=[("data.init_args.frames", "model.frames")],
        monitor="val/mpjpe",
        mode="min",
        project="attnpose-3d",
        subclass_mode_data=True,
        args=args,
    )


if __name__ == "__main__":
    main()
