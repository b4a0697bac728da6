"""The W&B logger of both trainers: Lightning's ``WandbLogger`` whose run summary holds each
reported metric's **best** value, not its last.

W&B sweeps and the runs table read a run's summary; by default that is the last logged value.
``define_metric(name, summary="min"|"max")`` makes it the best, so the W&B sweep table and
``make ablate``'s table (best value from ``metrics.json``) agree. The definitions are sent once,
when the run is created (rank 0 only; other ranks have no run).

It also drops the ``anonymous=None`` that Lightning always passes to ``wandb.init``: wandb ≥ 0.19
prints "The anonymous setting has no effect" for any value, so every run showed that warning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pytorch_lightning.loggers import WandbLogger

Goal = Literal["min", "max"]

# Metric names (after "<stage>/") and which value is best. 3D: Human3.6M errors (mm) and
# MPI-INF-3DHP PCK/AUC; per-group keys "<stage>/<metric>/<group>" follow their metric.
# 2D: the ten COCO keypoint stats (pose2d.module.STAT_KEYS) and the loss.
SUMMARY_GOALS: dict[str, Goal] = {
    "loss": "min",
    "mpjpe": "min",
    "mpjpe_framewise": "min",
    "p_mpjpe": "min",
    "mpjve": "min",
    "pck": "max",
    "auc": "max",
    **{k: "max" for k in ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")},
}
STAGES = ("val", "test")


def summary_definitions(
    goals: Mapping[str, Goal] = SUMMARY_GOALS, stages: Iterable[str] = STAGES
) -> list[tuple[str, Goal]]:
    """``[(metric name or glob, "min"|"max"), ...]`` for ``run.define_metric``: each metric of
    each stage, plus a ``<stage>/<metric>/*`` glob for its per-group values."""
    out: list[tuple[str, Goal]] = []
    for stage in stages:
        for name, goal in goals.items():
            out += [(f"{stage}/{name}", goal), (f"{stage}/{name}/*", goal)]
    return out


def define_summaries(run: Any, definitions: Iterable[tuple[str, Goal]] | None = None) -> None:
    """Call ``run.define_metric(name, summary=goal)`` for every definition."""
    for name, goal in summary_definitions() if definitions is None else definitions:
        run.define_metric(name, summary=goal)


class PoseWandbLogger(WandbLogger):
    """``WandbLogger`` with best-value summaries (:data:`SUMMARY_GOALS`) and no anonymous-setting
    warning; every argument is ``WandbLogger``'s."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not kwargs.get("anonymous"):
            self._wandb_init.pop("anonymous", None)
        self._summaries_defined = False

    @property
    def experiment(self):  # noqa: D102 - WandbLogger.experiment, plus the summaries once
        run = super().experiment
        if not self._summaries_defined and self._experiment is not None:
            self._summaries_defined = True
            define_summaries(self._experiment)
        return run
