"""The LightningCLI shared by ``python -m pose2d`` and ``python -m pose3d``.

Constructor arguments of the LightningModule / LightningDataModule become ``--model.*`` /
``--data.*`` flags and YAML keys (no registry). ``links`` ties one value to two places, e.g.
``("data.frames", "model.frames")`` so that ``--data.frames=243`` sizes the lifter too.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
from pytorch_lightning.cli import LightningCLI


class PoseCLI(LightningCLI):
    def __init__(
        self,
        model_class: type[pl.LightningModule],
        datamodule_class: type[pl.LightningDataModule],
        links: Sequence[tuple[str, str]] = (),
        **kwargs,
    ) -> None:
        self._links = tuple(links)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("seed_everything_default", 42)
        super().__init__(model_class, datamodule_class, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:  # noqa: D102
        for src, dst in self._links:
            parser.link_arguments(src, dst)


def run_cli(
    model_class: type[pl.LightningModule],
    datamodule_class: type[pl.LightningDataModule],
    links: Sequence[tuple[str, str]] = (),
    args: list[str] | None = None,
) -> PoseCLI:
    """Entry point used by each package's ``__main__``."""
    return PoseCLI(model_class, datamodule_class, links=links, args=args)
