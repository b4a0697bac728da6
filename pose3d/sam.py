"""Spatial Attention Module (SAM, paper Eq. 5): joint-neighbourhood mixing by depth-wise convs.

    P ← DWConv_k(GroupNorm(GELU(DWConv_k(P)))) + P,   P: (N, D, J)

The spatial block's tokens ``(N, J, D)`` (N = B·T frames, J joints, D channels) are transposed so
that the convolutions slide along the joint axis, each channel on its own (depth-wise,
``groups=D``), with zero padding ``k//2`` so J is kept. The joint axis is the H36M joint order,
so a kernel of 5 mixes each joint with its index neighbours (mostly limb neighbours in that
order).

GroupNorm groups: the paper says only "the normalization used in [28]". We use ``groups=8`` by
default (4 channels per group at D=32): per-frame statistics (no batch dependence, safe at any
batch size and under DDP) and coarser than per-channel (``groups=D``), which would normalise
each channel over only 17 values. ``norm_groups`` must divide D.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from pose3d.attention import LayerImpl, check_layer_impl


class SpatialAttentionModule(nn.Module):
    """SAM on spatial tokens: ``(N, J, D)`` → ``(N, J, D)`` (residual inside).

    Args:
        dim: D, the channels of each joint token (one depth-wise filter per channel).
        kernel_size: odd kernel length along the joint axis (paper: 5).
        norm_groups: GroupNorm groups; must divide ``dim``.
        eps: GroupNorm epsilon.
        layer_impl: "fast" runs the convolutions as channels-last 2D depth-wise convolutions on
            a view of the ``(N, J, D)`` tokens (no transposed copies, and a backward pass several
            times cheaper on CPU); "reference" is the literal transpose + Conv1d. Same weights,
            same numbers.
    """

    def __init__(
        self,
        dim: int,
        kernel_size: int = 5,
        norm_groups: int = 8,
        eps: float = 1e-5,
        layer_impl: LayerImpl = "fast",
    ) -> None:
        super().__init__()
        self.layer_impl = check_layer_impl(layer_impl)
        if kernel_size % 2 == 0:
            raise ValueError(f"SAM kernel_size must be odd to keep J, got {kernel_size}")
        if dim % norm_groups:
            raise ValueError(f"SAM norm_groups={norm_groups} must divide the width {dim}")
        pad = kernel_size // 2
        self.conv1 = nn.Conv1d(dim, dim, kernel_size, padding=pad, groups=dim)
        self.act = nn.GELU()
        self.norm = nn.GroupNorm(norm_groups, dim, eps=eps)
        self.conv2 = nn.Conv1d(dim, dim, kernel_size, padding=pad, groups=dim)

    def forward(self, x: Tensor) -> Tensor:
        if self.layer_impl == "fast":
            return self._forward_fast(x)
        p = x.transpose(1, 2)  # (N, D, J)
        p = self.conv2(self.norm(self.act(self.conv1(p)))) + p
        return p.transpose(1, 2)

    def _conv(self, conv: nn.Conv1d, p: Tensor) -> Tensor:
        """Depth-wise conv along J of a channels-last ``(N, D, 1, J)`` tensor (Conv1d weights
        viewed as ``(D, 1, 1, k)``)."""
        pad = conv.kernel_size[0] // 2
        return F.conv2d(p, conv.weight.unsqueeze(2), conv.bias, padding=(0, pad), groups=p.shape[1])

    def _forward_fast(self, x: Tensor) -> Tensor:
        n, j, d = x.shape
        # (N, J, D) viewed as (N, D, 1, J) is already channels-last: the convs read it in place
        # and their outputs stay channels-last, so the way back is a view as well.
        p = x.unsqueeze(1).permute(0, 3, 1, 2)
        h = self._conv(self.conv2, self.norm(self.act(self._conv(self.conv1, p))))
        return x + h.permute(0, 2, 3, 1).reshape(n, j, d)
