"""Channel Attention Module (CAM) of the paper (Fig. 3), an SE-style gate with 1×1 convolutions.

GAP → 1×1 conv C→C/s → ReLU → 1×1 conv C/s→C → sigmoid → multiply the input channel-wise.
Both convolutions carry a bias, so one module holds ``2·C·(C/s) + C/s + C`` parameters
(C²/2 + 5C/4 at s=4).
"""

from __future__ import annotations

import torch
from torch import nn


class ChannelAttention(nn.Module):
    """Rescale ``(B, C, H, W)`` features by a per-channel gate in (0, 1) computed from their GAP.

    Args:
        channels: C, the feature channels.
        reduction: the paper's shrinking ratio ``s`` (hidden width C/s; default 4).
    """

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        if channels % reduction:
            raise ValueError(f"CAM: channels {channels} not divisible by reduction {reduction}")
        hidden = channels // reduction
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=True)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → ``(B, C, 1, 1)`` gate in (0, 1)."""
        s = x.mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.fc2(self.relu(self.fc1(s))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)

    @torch.no_grad()
    def constant_gate_init(self) -> float:
        """Zero the second conv: the gate becomes sigmoid(0) = 0.5 for every input; returns it."""
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)
        return 0.5


def cam_param_count(channels: int, reduction: int = 4) -> int:
    """Parameters of one :class:`ChannelAttention`: two 1×1 convs with bias."""
    hidden = channels // reduction
    return 2 * channels * hidden + hidden + channels
