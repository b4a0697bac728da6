"""Stop training, on every rank together, when the loss or the gradients stop being finite.

Under bf16 there is no GradScaler, so one NaN step silently poisons the weights; under fp16 the
scaler skips inf/NaN-gradient steps (that is its normal job), so there only the loss is checked.
The decision is all-reduced (any rank bad -> all stop) before raising, otherwise the healthy ranks
would hang in the next collective. A checkpoint of the last good state is written first: the loss
check runs before ``backward`` so the weights have not been touched by the bad step yet.
"""

from __future__ import annotations

import os
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from callbacks.user_error import UserError


class NonFiniteInputError(UserError, FloatingPointError):
    """The loss is non-finite because the training batch itself holds NaN/Inf (a data error:
    one line, exit status 2)."""


def nonfinite_inputs(batch: Any) -> list[tuple[str, int]]:
    """``(key, first bad sample)`` for every floating-point tensor of a dict batch that holds
    NaN/Inf (only called once the loss is already non-finite)."""
    items = batch.items() if isinstance(batch, dict) else enumerate(batch or ())
    bad = []
    for key, value in items:
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dim() > 0:
            per_sample = ~torch.isfinite(value.detach()).reshape(len(value), -1).all(dim=1)
            if per_sample.any():
                bad.append((str(key), int(torch.nonzero(per_sample)[0, 0])))
    return bad


def describe_sample(trainer: pl.Trainer, batch: Any, i: int) -> str:
    """Which file/entry sample ``i`` of ``batch`` comes from: the datamodule's
    ``describe_sample(batch, i)`` when it has one, else the batch's id fields."""
    describe = getattr(getattr(trainer, "datamodule", None), "describe_sample", None)
    if callable(describe):
        try:
            return str(describe(batch, i))
        except Exception:  # noqa: BLE001 - the message must not hide the real error
            pass
    keys = ("seq", "frame", "image_id", "index")
    ids = [f"{k} {int(batch[k][i])}" for k in keys if isinstance(batch, dict) and k in batch]
    return ", ".join(ids) or f"sample {i} of the batch"


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
        self._batch: Any = None

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batch = batch  # a reference only: inspected once the loss is non-finite

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        bad = not bool(torch.isfinite(loss.detach()).all())  # the one sync this check needs
        # The value is only read for the message: a second .item() every step is a second sync.
        what = f"loss = {loss.detach().float().flatten()[:1].item()}" if bad else ""
        inputs = ""
        if bad:
            found = nonfinite_inputs(self._batch)
            if found:
                keys = ", ".join(k for k, _ in found)
                first = describe_sample(trainer, self._batch, found[0][1])
                inputs = f"the input batch holds NaN/Inf in {keys} (first: {first})"
        self._stop_if_any(trainer, bad, what, inputs)

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if not self.check_grads or str(trainer.precision).startswith("16"):
            return
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        self._stop_if_any(trainer, not all_finite(grads), "non-finite gradient")

    def _stop_if_any(self, trainer: pl.Trainer, bad: bool, what: str, inputs: str = "") -> None:
        # Collective: every rank calls this at the same hook of the same step.
        if not trainer.strategy.reduce_boolean_decision(bad, all=False):
            return
        where = f"epoch {trainer.current_epoch}, global step {trainer.global_step}"
        saved = ""
        if self.save_checkpoint:
            self.checkpoint_path = os.path.join(self._dirpath(trainer), "nonfinite.ckpt")
            # full state (optimizer included), to resume from; collective too (barrier inside)
            trainer.save_checkpoint(self.checkpoint_path, weights_only=False)
            saved = f"; last good state saved to {self.checkpoint_path}"
        cause = what if bad else "another rank saw a non-finite value"
        if inputs:  # bad data, not bad optimisation: no learning-rate advice
            raise NonFiniteInputError(
                f"non-finite loss at {where} ({cause}): {inputs}; fix or drop those entries "
                f"(the prepare commands refuse NaN/Inf; --nonfinite drop leaves them out){saved}"
            )
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
