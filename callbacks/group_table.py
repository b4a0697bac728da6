"""Per-group (per-action / per-test-sequence) metric table, as a ``wandb.Table`` and markdown.

The 3D module logs one scalar per group as ``<stage>/<metric>/<group name>`` (for example
``val/mpjpe/Walking``, ``test/p2/TS3``); this callback gathers those keys after the pass (when
``callback_metrics`` is final and already reduced across ranks) into one table: a row per group in
``datamodule.group_names`` order, a column per metric. Rank 0 only.
"""

from __future__ import annotations

import os

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import WandbLogger

from callbacks.metrics_file import plain_metrics


def group_table(
    metrics: dict[str, float], stage: str, groups: list[str]
) -> tuple[list[str], list[list]]:
    """Columns ``["group", m1, m2, ...]`` and rows ``[[group, v1, v2, ...], ...]``.

    Only groups with at least one value appear; metrics are sorted by name; a missing value is
    ``None``.
    """
    wanted = set(groups)
    found: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == stage and parts[2] in wanted:
            found.setdefault(parts[1], {})[parts[2]] = value
    names = sorted(found)
    rows = [
        [g] + [found[m].get(g) for m in names] for g in groups if any(g in found[m] for m in names)
    ]
    return ["group", *names], rows


def to_markdown(columns: list[str], rows: list[list], digits: int = 2) -> str:
    """A GitHub markdown table; floats rounded to ``digits``."""

    def cell(v) -> str:
        if v is None:
            return "-"
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


class GroupTable(Callback):
    """Logs ``<stage>/per_group`` with ``WandbLogger.log_table`` and writes
    ``<dirpath>/<stage>_per_group.md``; does nothing when the datamodule has no ``group_names``
    or no per-group keys were logged."""

    def __init__(self, dirpath: str | None = None, stages: tuple[str, ...] = ("val", "test")):
        self.dirpath = dirpath
        self.stages = stages

    def _emit(self, trainer: pl.Trainer, stage: str) -> None:
        groups = list(getattr(trainer.datamodule, "group_names", None) or [])
        if not trainer.is_global_zero or stage not in self.stages or not groups:
            return
        columns, rows = group_table(plain_metrics(trainer.callback_metrics), stage, groups)
        if not rows:
            return
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_table(key=f"{stage}/per_group", columns=columns, data=rows)
        if self.dirpath:
            os.makedirs(self.dirpath, exist_ok=True)
            with open(os.path.join(self.dirpath, f"{stage}_per_group.md"), "w") as f:
                f.write(to_markdown(columns, rows))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._emit(trainer, "val")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._emit(trainer, "test")
