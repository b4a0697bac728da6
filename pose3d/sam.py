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

from torch import Tensor, nn


class SpatialAttentionModule(nn.Module):
    """SAM on spatial tokens: ``(N, J, D)`` → ``(N, J, D)`` (residual inside).

    Args:
        dim: D, the channels of each joint token (one depth-wise filter per channel).
        kernel_size: odd kernel length along the joint axis (paper: 5).
        norm_groups: GroupNorm groups; must divide ``dim``.
        eps: GroupNorm epsilon.
    """

    def __init__(
        self, dim: int, kernel_size: int = 5, norm_groups: int = 8, eps: float = 1e-5
    ) -> None:
        super().__init__()
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
        p = x.transpose(1, 2)  # (N, D, J)
        p = self.conv2(self.norm(self.act(self.conv1(p)))) + p
        return p.transpose(1, 2)
