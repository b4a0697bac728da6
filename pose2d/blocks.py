"""HRNet building blocks with the official module names (so official state dicts load as-is).

``BasicBlock`` / ``Bottleneck`` may carry an optional :class:`ChannelAttention` as ``.cam``,
applied after the last BN and before the residual addition (paper Fig. 3); without it they hold
exactly the official parameters. ``HighResolutionModule`` is one multi-branch unit: parallel
branches of residual blocks followed by the all-to-all fuse layers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pose2d.cam import ChannelAttention

BN_MOMENTUM = 0.1


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 conv+BN with an identity (or projected) residual; ``(B, C, H, W)`` in and out."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        cam_reduction: int | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.downsample = downsample
        self.cam = ChannelAttention(planes, cam_reduction) if cam_reduction else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.cam is not None:
            out = self.cam(out)
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    """1×1 → 3×3 → 1×1 (×4 channels) conv+BN with a residual; ``(B, Cin, H, W) → (B, 4P, H, W)``."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        cam_reduction: int | None = None,
    ) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, out, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.cam = ChannelAttention(out, cam_reduction) if cam_reduction else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.cam is not None:
            out = self.cam(out)
        return self.relu(out + residual)


def make_blocks(
    block: type[BasicBlock] | type[Bottleneck],
    inplanes: int,
    planes: int,
    num_blocks: int,
    stride: int = 1,
    cam_blocks: Sequence[int] = (),
    cam_reduction: int = 4,
) -> nn.Sequential:
    """A chain of ``num_blocks`` blocks; the first projects the residual when shapes change.

    ``cam_blocks``: indices (in this chain) of the blocks that get a CAM.
    """
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * block.expansion, 1, stride=stride, bias=False),
            nn.BatchNorm2d(planes * block.expansion, momentum=BN_MOMENTUM),
        )
    cams = set(cam_blocks)
    layers = []
    for i in range(num_blocks):
        layers.append(
            block(
                inplanes if i == 0 else planes * block.expansion,
                planes,
                stride if i == 0 else 1,
                downsample if i == 0 else None,
                cam_reduction if i in cams else None,
            )
        )
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches + fuse: list of ``(B, C_i, H/2^i, W/2^i)`` → the same list (or only
    branch 0 when ``multi_scale_output=False``, the last module of the network).

    ``cam_blocks[b]``: block indices of branch ``b`` that get a CAM.
    """

    def __init__(
        self,
        channels: Sequence[int],
        num_blocks: int,
        multi_scale_output: bool = True,
        cam_blocks: Sequence[Sequence[int]] | None = None,
        cam_reduction: int = 4,
    ) -> None:
        super().__init__()
        self.num_branches = len(channels)
        self.channels = list(channels)
        self.multi_scale_output = multi_scale_output
        cam_blocks = cam_blocks or [()] * self.num_branches
        self.branches = nn.ModuleList(
            make_blocks(BasicBlock, c, c, num_blocks, 1, cam_blocks[b], cam_reduction)
            for b, c in enumerate(channels)
        )
        self.fuse_layers = self._make_fuse_layers()
        self.relu = nn.ReLU(inplace=True)

    def _make_fuse_layers(self) -> nn.ModuleList | None:
        if self.num_branches == 1:
            return None
        c = self.channels
        fuse = []
        for i in range(self.num_branches if self.multi_scale_output else 1):
            row: list[nn.Module | None] = []
            for j in range(self.num_branches):
                if j > i:  # lower resolution → 1×1 conv, BN, nearest upsampling
                    row.append(
                        nn.Sequential(
                            nn.Conv2d(c[j], c[i], 1, bias=False),
                            nn.BatchNorm2d(c[i], momentum=BN_MOMENTUM),
                            nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                        )
                    )
                elif j == i:
                    row.append(None)
                else:  # higher resolution → (i - j) stride-2 3×3 convs, ReLU between them only
                    steps = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        out = c[i] if last else c[j]
                        layers: list[nn.Module] = [
                            conv3x3(c[j], out, 2),
                            nn.BatchNorm2d(out, momentum=BN_MOMENTUM),
                        ]
                        if not last:
                            layers.append(nn.ReLU(inplace=True))
                        steps.append(nn.Sequential(*layers))
                    row.append(nn.Sequential(*steps))
            fuse.append(nn.ModuleList(row))
        return nn.ModuleList(fuse)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        if self.fuse_layers is None:
            return xs
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[i]
            for j, layer in enumerate(row):
                if j != i:
                    y = y + layer(xs[j])
            out.append(self.relu(y))
        return out
