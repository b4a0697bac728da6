"""Stop training, on every rank together, when the loss or the gradients stop being finite.

Under bf16 there is no GradScaler, so one NaN step silently poisons the weights; under fp16 the
scaler skips inf/NaN-gradient steps (that is its normal job), so there only the loss is checked.
The decision is all-reduced (any rank bad -> all stop) before raising, otherwise the healthy ranks
would hang in the next collective. A checkpoint of the last good state is written first: the loss
check runs before ``backward`` so the weights have not been touched by the bad step yet.
"""

from __future__ import annotations

import os

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback


def all_finite(tensors: list[torch.Tensor]) -> bool:
    """True when every element of every tensor is finite (one fused norm per tensor list)."""
    if not tensors:
        return True
    # A norm is inf/NaN iff some element is; _foreach_norm is one kernel launch per device.
    norms = torch._foreach_norm([t.detach().float() for t in tensors])
    return bool(torch.isfinite(torch.stack(norms)).all())


class NonFiniteGuard(Callback):
    """Raise ``FloatingPointError`` on all ranks at the first non-finite loss (or gradient).

    Args:
        check_grads: also check gradients in ``on_before_optimizer_step`` (skipped under
            ``16-mixed`` where the GradScaler handles inf gradients).
        save_checkpoint: write ``nonfinite.ckpt`` (last good weights) before raising.
        dirpath: folder for that checkpoint; default: the ModelCheckpoint folder, else the
            trainer's ``default_root_dir``.
    """

    def __init__(
        self, check_grads: bool = True, save_checkpoint: bool = True, dirpath: str | None = None
    ) -> None:
        self.check_grads = check_grads
        self.save_checkpoint = save_checkpoint
        self.dirpath = dirpath
        self.checkpoint_path: str | None = None

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        bad = not bool(torch.isfinite(loss.detach()).all())  # the one sync this check needs
        # The value is only read for the message: a second .item() every step is a second sync.
        what = f"loss = {loss.detach().float().flatten()[:1].item()}" if bad else ""
        self._stop_if_any(trainer, bad, what)

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if not self.check_grads or str(trainer.precision).startswith("16"):
            return
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        self._stop_if_any(trainer, not all_finite(grads), "non-finite gradient")

    def _stop_if_any(self, trainer: pl.Trainer, bad: bool, what: str) -> None:
        # Collective: every rank calls this at the same hook of the same step.
        if not trainer.strategy.reduce_boolean_decision(bad, all=False):
            return
        where = f"epoch {trainer.current_epoch}, global step {trainer.global_step}"
        saved = ""
        if self.save_checkpoint:
            self.checkpoint_path = os.path.join(self._dirpath(trainer), "nonfinite.ckpt")
            trainer.save_checkpoint(self.checkpoint_path)  # collective too (barrier inside)
            saved = f"; last good state saved to {self.checkpoint_path}"
        cause = what if bad else "another rank saw a non-finite value"
        raise FloatingPointError(
            f"Non-finite training value at {where} ({cause}){saved}. Lower the learning rate, "
            "use --trainer.gradient_clip_val, or switch precision (bf16-mixed <-> 32)."
        )

    def _dirpath(self, trainer: pl.Trainer) -> str:
        if self.dirpath:
            return self.dirpath
        ckpt = trainer.checkpoint_callback
        if ckpt is not None and getattr(ckpt, "dirpath", None):
            return ckpt.dirpath
        return trainer.default_root_dir
