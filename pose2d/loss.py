"""The official ``JointsMSELoss`` for heatmap regression."""

from __future__ import annotations

import torch
from torch import nn


def joints_mse_loss(
    pred: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """``0.5 · mean_j MSE(pred_j · w_j, target_j · w_j)``.

    ``pred``/``target``: ``(B, J, h, w)``; ``target_weight``: ``(B, J)`` or ``(B, J, 1)`` (the
    visibility of each joint; ``None`` weights every joint 1). Each joint's MSE is averaged over
    batch and pixels, then the joints are averaged — identical to the official loop.
    """
    if target_weight is not None:
        w = target_weight.reshape(*target_weight.shape[:2], 1, 1).to(pred.dtype)
        pred, target = pred * w, target * w
    # Mean over all elements == mean over joints of the per-joint means (same count per joint).
    return 0.5 * (pred.float() - target.float()).pow(2).mean()


class JointsMSELoss(nn.Module):
    """Module form of :func:`joints_mse_loss` (``use_target_weight=True`` as in the recipe)."""

    def __init__(self, use_target_weight: bool = True) -> None:
        super().__init__()
        self.use_target_weight = use_target_weight

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        return joints_mse_loss(pred, target, target_weight if self.use_target_weight else None)
