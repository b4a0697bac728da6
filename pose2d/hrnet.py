"""Pose HRNet (W32/W48) with optional channel attention, key-for-key the official model.

``PoseHighResolutionNet(width=32)`` has the official COCO pose model's 1,754 state-dict entries
and 28,536,113 parameters (W48: 63,595,745). CAM modules only ever add new keys
(``...branches.<b>.<k>.cam.fc{1,2}.*``), so official checkpoints still load.

CAM placement (paper §II.A.2 and Table VII). The paper counts HRNet's *multi-branch* stages as
"stages" 1-3 (= the official ``stage2``/``stage3``/``stage4``) and its resolution branches as
"sub-networks" 1-4 (branch 0 = full resolution). A site ``"<stage>.<branch>"`` in official
numbering (``"2.0"`` = stage2, branch 0; ``"1.0"`` = layer1) gets a CAM on the last ``cam_blocks``
(default 2) residual blocks of that branch, in the *last* module of the stage (or in every module
with ``cam_modules="all"``). Presets:

========== ========================================================== ======= ==============
preset     sites                                                      modules paper
========== ========================================================== ======= ==============
none       —                                                          0       baseline
paper/sub1 branch 0 of stages 2, 3, 4                                 6       default, Fig.2
sub21      branches 0-1 of stages 2, 3, 4                             12      Table VII
sub321     branches 0-2 of stages 2, 3, 4                             16      Table VII
stage1     all (≤3) branches of stage 2                               4       Table VII
stage21    all (≤3) branches of stages 2, 3                           10      Table VII
stage321   all (≤3) branches of stages 2, 3, 4 (= sub321)             16      Table VII
========== ========================================================== ======= ==============

"3+2+1" on both axes reaching the same AP and #params in Table VII, and the text's "16 attention
modules" for it, fix this reading: the two axes span the same 3×3 grid of sub-networks × stages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch
from torch import nn

from pose2d.blocks import BN_MOMENTUM, BasicBlock, Bottleneck, HighResolutionModule, make_blocks

_STAGES = (2, 3, 4)
CamPreset = Literal["none", "paper", "sub1", "sub21", "sub321", "stage1", "stage21", "stage321"]
CamModules = Literal["last", "all"]
CamInit = Literal["auto", "normal", "identity"]
CAM_PRESETS: dict[str, tuple[str, ...]] = {
    "none": (),
    "paper": ("2.0", "3.0", "4.0"),
    "sub1": ("2.0", "3.0", "4.0"),
    "sub21": ("2.0", "3.0", "4.0", "2.1", "3.1", "4.1"),
    "sub321": ("2.0", "3.0", "4.0", "2.1", "3.1", "4.1", "3.2", "4.2"),
    "stage1": ("2.0", "2.1"),
    "stage21": ("2.0", "2.1", "3.0", "3.1", "3.2"),
    "stage321": ("2.0", "2.1", "3.0", "3.1", "3.2", "4.0", "4.1", "4.2"),
}


def parse_cam_placement(placement: str | Sequence[str]) -> set[tuple[int, int]]:
    """Preset name, ``"2.0,3.0"`` or ``["2.0", "3.0"]`` → set of (stage, branch) sites."""
    if isinstance(placement, str):
        if placement in CAM_PRESETS:
            items: Sequence[str] = CAM_PRESETS[placement]
        else:
            items = [p for p in placement.replace(" ", "").split(",") if p]
    else:
        items = placement
    sites = set()
    for item in items:
        try:
            stage, branch = (int(v) for v in str(item).split("."))
        except ValueError:
            raise ValueError(
                f"cam_placement entry {item!r}: expected a preset {sorted(CAM_PRESETS)} or "
                "'<stage>.<branch>' sites like '2.0,3.0' (stage 1-4, branch 0-3)"
            ) from None
        valid = (stage == 1 and branch == 0) or (stage in _STAGES and 0 <= branch < stage)
        if not valid:
            raise ValueError(f"cam_placement site {item!r} does not exist in HRNet")
        sites.add((stage, branch))
    return sites


class PoseHighResolutionNet(nn.Module):
    """Top-down pose HRNet: image ``(B, 3, H, W)`` → heatmaps ``(B, num_joints, H/4, W/4)``.

    ``width`` 32/48 gives W32/W48; ``num_blocks``, ``stage_modules`` and ``stem_channels`` exist
    to build reduced CPU-sized models (defaults reproduce the official network).

    Args:
        width: channels of the full-resolution branch (32 → W32, 48 → W48).
        num_joints: heatmap channels.
        cam_placement: a preset (see the module docstring), ``"2.0,3.0"`` or a list of sites.
        cam_reduction: CAM shrinking ratio ``s``.
        cam_blocks: CAMs on the last ``cam_blocks`` residual blocks of each chosen branch.
        cam_modules: ``last`` module of a stage only, or ``all`` its modules.
        num_blocks: residual blocks per branch in each module.
        stage_modules: modules in stages 2, 3, 4 (official 1, 4, 3).
        stem_channels: channels of the stem and layer1 bottleneck width.
        pretrained: an ImageNet or COCO-pose ``.pth`` to initialise from (None: scratch).
        cam_init: how CAMs start (see :meth:`cam_identity_init`): ``normal`` (every conv
            N(0, 0.001) like the rest of the network, so every gate starts at ≈0.5 and each
            gated block at about half its output; the from-scratch setting), ``identity`` (the
            network's initial output equals the same weights without CAM), ``auto`` (identity
            when ``pretrained`` is given, else normal).
    """

    def __init__(
        self,
        width: int = 32,
        num_joints: int = 17,
        cam_placement: str | list[str] = "none",
        cam_reduction: int = 4,
        cam_blocks: int = 2,
        cam_modules: CamModules = "last",
        num_blocks: int = 4,
        stage_modules: Sequence[int] = (1, 4, 3),
        stem_channels: int = 64,
        pretrained: str | None = None,
        cam_init: CamInit = "auto",
    ) -> None:
        super().__init__()
        if cam_init not in get_args(CamInit):
            raise ValueError(f"cam_init must be one of {get_args(CamInit)}, got {cam_init!r}")
        if cam_modules not in ("last", "all"):
            raise ValueError(f"cam_modules must be 'last' or 'all', got {cam_modules!r}")
        if len(stage_modules) != 3:
            raise ValueError(f"stage_modules: one count per stage 2-4, got {stage_modules}")
        if cam_placement != "none" and not 1 <= cam_blocks <= num_blocks:
            raise ValueError(f"cam_blocks={cam_blocks} must lie in [1, num_blocks={num_blocks}]")
        sites = parse_cam_placement(cam_placement)
        cam_idx = tuple(range(num_blocks - cam_blocks, num_blocks))
        self.cam_sites = sorted(sites)

        self.conv1 = nn.Conv2d(3, stem_channels, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_channels, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(stem_channels, stem_channels, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(stem_channels, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_blocks(
            Bottleneck,
            stem_channels,
            stem_channels,
            num_blocks,
            cam_blocks=cam_idx if (1, 0) in sites else (),
            cam_reduction=cam_reduction,
        )
        channels = [width * 2**b for b in range(4)]
        prev = [stem_channels * Bottleneck.expansion]
        for s, n_modules in zip(_STAGES, stage_modules, strict=True):
            cur = channels[:s]
            setattr(self, f"transition{s - 1}", self._make_transition(prev, cur))
            modules = []
            for m in range(n_modules):
                last_module = m == n_modules - 1
                with_cam = last_module or cam_modules == "all"
                cam = [cam_idx if with_cam and (s, b) in sites else () for b in range(s)]
                modules.append(
                    HighResolutionModule(
                        cur,
                        num_blocks,
                        multi_scale_output=not (s == 4 and last_module),
                        cam_blocks=cam,
                        cam_reduction=cam_reduction,
                    )
                )
            setattr(self, f"stage{s}", nn.Sequential(*modules))
            prev = cur
        self.final_layer = nn.Conv2d(channels[0], num_joints, kernel_size=1, bias=True)
        self.init_weights()
        if pretrained:
            from pose2d.pretrained import load_pretrained

            load_pretrained(self, pretrained)
        if cam_init == "identity" or (cam_init == "auto" and pretrained):
            self.cam_identity_init()

    @staticmethod
    def _make_transition(prev: list[int], cur: list[int]) -> nn.ModuleList:
        """Adapt existing branches whose width changes; grow new branches by stride-2 convs."""
        layers: list[nn.Module | None] = []
        for i, c in enumerate(cur):
            if i < len(prev):
                layers.append(
                    None
                    if prev[i] == c
                    else nn.Sequential(
                        nn.Conv2d(prev[i], c, 3, 1, 1, bias=False),
                        nn.BatchNorm2d(c, momentum=BN_MOMENTUM),
                        nn.ReLU(inplace=True),
                    )
                )
                continue
            steps = []
            for k in range(i + 1 - len(prev)):
                out = c if k == i - len(prev) else prev[-1]
                steps.append(
                    nn.Sequential(
                        nn.Conv2d(prev[-1], out, 3, 2, 1, bias=False),
                        nn.BatchNorm2d(out, momentum=BN_MOMENTUM),
                        nn.ReLU(inplace=True),
                    )
                )
            layers.append(nn.Sequential(*steps))
        return nn.ModuleList(layers)

    def init_weights(self) -> None:
        """Official init: every conv N(0, 0.001) with zero bias, BN (1, 0)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def _transit(transition: nn.ModuleList, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(transition):
            if layer is None:
                out.append(xs[i])
            else:
                out.append(layer(xs[i] if i < len(xs) else xs[-1]))
        return out

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` → full-resolution branch features ``(B, width, H/4, W/4)``."""
        if img.shape[-1] % 32 or img.shape[-2] % 32:
            # Four resolutions down to 1/32: other sizes make the fuse layers' maps disagree.
            raise ValueError(f"HRNet input H, W must be multiples of 32, got {tuple(img.shape)}")
        x = self.relu(self.bn1(self.conv1(img)))
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        xs = self.stage2(self._transit(self.transition1, xs))
        xs = self.stage3(self._transit(self.transition2, xs))
        xs = self.stage4(self._transit(self.transition3, xs))
        return xs[0]

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.features(img))

    @torch.no_grad()
    def cam_identity_init(self) -> None:
        """Start every CAM as a no-op on the current weights: the second CAM conv is zeroed, so
        each gate is exactly sigmoid(0) = 0.5 for any input (where the gradient is largest),
        and the BN before the CAM (``bn2`` / ``bn3``) has its affine ×2 to compensate. Both
        factors are powers of two, so the output equals the network without CAM bit for bit
        (starting from pretrained weights the model starts exactly at the pretrained model)."""
        for block in self.modules():
            if isinstance(block, BasicBlock | Bottleneck) and block.cam is not None:
                gate = block.cam.constant_gate_init()
                bn = block.bn3 if isinstance(block, Bottleneck) else block.bn2
                bn.weight.div_(gate)
                bn.bias.div_(gate)

    def cam_state_keys(self) -> list[str]:
        """State-dict keys that belong to CAM modules (absent from official checkpoints)."""
        return [k for k in self.state_dict() if ".cam." in k]


def hrnet_w32(**kwargs) -> PoseHighResolutionNet:
    return PoseHighResolutionNet(width=32, **kwargs)


def hrnet_w48(**kwargs) -> PoseHighResolutionNet:
    return PoseHighResolutionNet(width=48, **kwargs)
