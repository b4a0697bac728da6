"""Lifting loss, paper Eq. 10-12: L = λs·Ls + λt·Lt (+ λv·Lv, ours, off by default).

Reading: Ls ("spatial" loss, Eq. 10) is the MPJPE of the window's centre frame, the frame that is
scored; Lt ("temporal" loss, Eq. 11) is the MPJPE over all T output frames of the sequence head.
The paper writes sums; we take means (MPJPE, as the text says "the mean of MPJPE"), so λs and λt
do not depend on batch size, T or J. With the centre head the output has one frame, so Lt is 0
and only Ls trains. Lv is the MPJVE-style velocity error (mean L2 of frame-to-frame differences
of prediction minus target), as used by MixSTE; it needs ≥ 2 output frames.
All tensors in metres; ``(B, T, J, 3)`` targets, ``(B, T, J, 3)`` or ``(B, 1, J, 3)`` predictions.
"""

from __future__ import annotations

from torch import Tensor, nn


def mpjpe_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean per-joint L2 distance over every leading element. ``(..., J, 3)`` → scalar."""
    return (pred - target).norm(dim=-1).mean()


def velocity_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean L2 error of per-frame velocities along T. ``(B, T, J, 3)`` (T ≥ 2) → scalar."""
    return ((pred[:, 1:] - pred[:, :-1]) - (target[:, 1:] - target[:, :-1])).norm(dim=-1).mean()


def center(x: Tensor) -> Tensor:
    """Centre frame of a window: ``(B, T, J, C)`` → ``(B, J, C)``."""
    return x[:, x.shape[1] // 2]


class LiftingLoss(nn.Module):
    """``forward(pred, target) -> dict(loss, loss_s, loss_t, loss_v)`` (scalars, metres)."""

    def __init__(self, lambda_s: float = 1.0, lambda_t: float = 1.0, lambda_v: float = 0.0):
        super().__init__()
        self.lambda_s, self.lambda_t, self.lambda_v = lambda_s, lambda_t, lambda_v

    def forward(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        if pred.shape[1] not in (1, target.shape[1]) or pred.shape[2:] != target.shape[2:]:
            raise ValueError(f"pred {tuple(pred.shape)} vs target {tuple(target.shape)}")
        pred, target = pred.float(), target.float()
        loss_s = mpjpe_loss(center(pred), center(target))
        sequence = pred.shape[1] == target.shape[1] and pred.shape[1] > 1
        zero = loss_s.new_zeros(())
        loss_t = mpjpe_loss(pred, target) if sequence else zero
        loss_v = velocity_loss(pred, target) if sequence and self.lambda_v else zero
        loss = self.lambda_s * loss_s + self.lambda_t * loss_t + self.lambda_v * loss_v
        return {"loss": loss, "loss_s": loss_s, "loss_t": loss_t, "loss_v": loss_v}
