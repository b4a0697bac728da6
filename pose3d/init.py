"""Initialisation of the lifter's added modules (SAM, TAM); everything else keeps PyTorch's
default init, as the official PoseFormer (zero positional embeddings, no custom init).

``"default"``: SAM and TAM keep PyTorch's default init too, so a freshly inserted module adds a
random perturbation to the residual stream of a network that PoseFormer trains without it.
``"identity"``: the last map of each module's residual branch starts at zero (SAM: the second
depth-wise convolution, weight and bias; TAM: the V rows of its Q/K/V projection), so every SAM
and TAM starts as the identity and the network starts as PoseFormer (the zero-init-residual
idea; no new parameters, same state-dict keys). The other maps get gradients as soon as the
zeroed one moves off zero.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn

from pose3d.sam import SpatialAttentionModule
from pose3d.tam import TemporalAttentionModule

ModuleInit = Literal["default", "identity"]
MODULE_INITS: tuple[str, ...] = get_args(ModuleInit)


@torch.no_grad()
def identity_init_(module: nn.Module) -> nn.Module:
    """Zero the last map of a SAM or TAM residual branch in place (see module docstring)."""
    if isinstance(module, SpatialAttentionModule):
        module.conv2.weight.zero_()
        if module.conv2.bias is not None:
            module.conv2.bias.zero_()
    elif isinstance(module, TemporalAttentionModule):
        d = module.joint_dim
        module.qkv.weight[2 * d :].zero_()  # rows [2D, 3D) of Linear(D → 3D) produce V
        if module.qkv.bias is not None:
            module.qkv.bias[2 * d :].zero_()
    else:
        raise TypeError(f"identity init is defined for SAM and TAM, not {type(module).__name__}")
    return module
