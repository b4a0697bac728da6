"""``metrics.json`` in the run folder: the numbers a sweep or a script reads back after a run.

Written on rank 0 after every validation/test pass and at the end of fit, whatever the logger
(W&B online, offline, disabled/CSV), so ``python -m callbacks.ablate`` never depends on W&B.
Layout: ``{"validate": {...}, "test": {...}, "best": {"<monitor>": x, "epoch": e}, "params": n}``
with every value a plain float; ``validate`` holds the latest validation metrics.
"""

from __future__ import annotations

import json
import math
import os

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

from callbacks.throughput import count_parameters


def plain_metrics(metrics: dict) -> dict[str, float]:
    """Scalar tensors/numbers -> float (non-scalars dropped; NaN kept as None for JSON)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                continue
            value = value.item()
        if isinstance(value, (int, float)):
            out[key] = None if isinstance(value, float) and not math.isfinite(value) else value
    return out


class MetricsFile(Callback):
    """Keeps ``<dirpath>/metrics.json`` up to date (see module docstring)."""

    def __init__(self, dirpath: str, filename: str = "metrics.json") -> None:
        self.path = os.path.join(dirpath, filename)
        self.data: dict = {}

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        metrics = plain_metrics(trainer.callback_metrics)
        prefix = "test/" if stage == "test" else None
        if prefix:
            metrics = {k: v for k, v in metrics.items() if k.startswith(prefix)}
        self.data[stage] = metrics
        self.data["params"] = count_parameters(pl_module)[0]
        self.data["epoch"] = trainer.current_epoch
        self.data["global_step"] = trainer.global_step
        ckpt = trainer.checkpoint_callback
        if isinstance(ckpt, ModelCheckpoint) and ckpt.monitor and ckpt.best_model_score is not None:
            self.data["best"] = {
                ckpt.monitor: float(ckpt.best_model_score),
                "path": ckpt.best_model_path,
            }
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=2, sort_keys=True)
        os.replace(tmp, self.path)  # readers never see a half-written file

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._write(trainer, pl_module, "validate")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write(trainer, pl_module, "test")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # best_model_score is final only now (the last epoch's checkpoint ran after validation)
        if "validate" in self.data:
            self._write(trainer, pl_module, "validate")
