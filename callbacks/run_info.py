"""Facts about a run, sent once to the logger and written next to the run.

``git_commit`` (with a ``-dirty`` suffix for uncommitted changes), parameter counts, world size,
precision and the torch / Lightning versions. The resolved config is saved by
``callbacks.cli.RunConfigSaver``; both end up in ``wandb.config`` / ``hparams.yaml``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from callbacks.throughput import count_parameters


def git_commit(cwd: str | os.PathLike | None = None) -> str:
    """HEAD commit of the repository holding this file ("unknown" outside git)."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_facts(trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
    """Plain-typed description of the run (safe for any logger and for JSON)."""
    total, trainable = count_parameters(pl_module)
    return {
        "git_commit": git_commit(),
        "params": total,
        "params_trainable": trainable,
        "world_size": trainer.world_size,
        "num_nodes": trainer.num_nodes,
        "precision": str(trainer.precision),
        "strategy": type(trainer.strategy).__name__,
        "torch": torch.__version__,
        "pytorch_lightning": pl.__version__,
    }


class RunInfo(Callback):
    """Logs :func:`run_facts` as hyper-parameters and writes ``run_info.json`` into ``dirpath``."""

    def __init__(self, dirpath: str | None = None) -> None:
        self.dirpath = dirpath
        self.facts: dict | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.facts is not None or not trainer.is_global_zero:
            return
        self.facts = run_facts(trainer, pl_module)
        for logger in trainer.loggers:
            logger.log_hyperparams({"run": self.facts})
        if self.dirpath:
            os.makedirs(self.dirpath, exist_ok=True)
            facts = dict(self.facts)
            wandb_id, wandb_group = _wandb_run(trainer)
            if wandb_id:
                facts["wandb_run_id"] = wandb_id
            if wandb_group:  # offline segments of one run folder share it (callbacks.cli)
                facts["wandb_group"] = wandb_group
            with open(os.path.join(self.dirpath, "run_info.json"), "w") as f:
                json.dump(facts, f, indent=2)


def _wandb_run(trainer: pl.Trainer) -> tuple[str | None, str | None]:
    """(run id, group) of the W&B run, ``(None, None)`` without one."""
    from pytorch_lightning.loggers import WandbLogger

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            run_id = getattr(logger.experiment, "id", None)
            group = getattr(logger.experiment, "group", None)
            return (str(run_id) if run_id else None), (str(group) if group else None)
    return None, None
