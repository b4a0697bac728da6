"""Training speed to the logger: samples/s (global), epoch time, peak GPU memory, parameter count.

Timing is wall clock between hooks; the GPU is synchronised only once per epoch (not per step)
so the measurement does not slow training down. The step-level rate is over the last
``log_every_n_steps`` steps and may lag asynchronous CUDA work by a few steps.
"""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities.data import extract_batch_size


def count_parameters(module: torch.nn.Module) -> tuple[int, int]:
    """(total, trainable) number of parameter elements."""
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return total, trainable


def _batch_size(batch: Any) -> int:
    try:
        return int(extract_batch_size(batch))
    except Exception:  # noqa: BLE001 - unknown batch layouts just count as 0 samples
        return 0


class Throughput(Callback):
    """Logs ``perf/*`` metrics on rank 0.

    Keys: ``perf/train_samples_per_s`` (every ``log_every_n_steps`` and per epoch, all ranks
    together), ``perf/train_epoch_s``, ``perf/val_epoch_s``, ``perf/peak_gpu_mem_gib`` (CUDA
    only), ``model/params`` and ``model/params_trainable`` (once).
    """

    def __init__(self, log_every_n_steps: int | None = None) -> None:
        self.log_every_n_steps = log_every_n_steps
        self.epoch_samples_per_s: float | None = None
        self.epoch_seconds: float | None = None
        self._epoch_t0 = 0.0
        self._epoch_samples = 0
        self._win_t0 = 0.0
        self._win_samples = 0
        self._val_t0 = 0.0

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _log(trainer: pl.Trainer, metrics: dict[str, float]) -> None:
        if not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    @staticmethod
    def _sync(pl_module: pl.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    # -- hooks -----------------------------------------------------------------------------
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        total, trainable = count_parameters(pl_module)
        self._log(trainer, {"model/params": float(total), "model/params_trainable": trainable})

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)
        self._sync(pl_module)
        self._epoch_t0 = self._win_t0 = time.perf_counter()
        self._epoch_samples = self._win_samples = 0

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        n = _batch_size(batch) * trainer.world_size
        self._epoch_samples += n
        self._win_samples += n
        every = self.log_every_n_steps or trainer.log_every_n_steps
        if every and (batch_idx + 1) % every == 0:
            now = time.perf_counter()
            if now > self._win_t0:
                rate = self._win_samples / (now - self._win_t0)
                self._log(trainer, {"perf/train_samples_per_s": rate})
            self._win_t0, self._win_samples = now, 0

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._sync(pl_module)
        seconds = time.perf_counter() - self._epoch_t0
        self.epoch_seconds = seconds
        self.epoch_samples_per_s = self._epoch_samples / seconds if seconds > 0 else 0.0
        metrics = {
            "perf/train_epoch_s": seconds,
            "perf/train_epoch_samples_per_s": self.epoch_samples_per_s,
        }
        if pl_module.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(pl_module.device) / 2**30
            metrics["perf/peak_gpu_mem_gib"] = peak
        self._log(trainer, metrics)

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._val_t0 = time.perf_counter()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._sync(pl_module)
        self._log(trainer, {"perf/val_epoch_s": time.perf_counter() - self._val_t0})
