"""The PoseFormer configuration matches the official model module by module (not only in count)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pose3d.lifter import PoseLifter


@pytest.fixture(scope="module")
def poseformer() -> PoseLifter:
    return PoseLifter(27, use_sam=False, use_tam=False, head="center")


def test_layernorm_eps_like_poseformer(poseformer: PoseLifter) -> None:
    """Blocks and stage norms use partial(LayerNorm, eps=1e-6); the head's LayerNorm is built
    with nn.LayerNorm's default eps 1e-5 in model_poseformer.py."""
    assert poseformer.head_norm.eps == 1e-5
    others = [
        m
        for name, m in poseformer.named_modules()
        if isinstance(m, nn.LayerNorm) and name != "head_norm"
    ]
    assert len(others) == 2 * 4 * 2 + 2  # 2 per block, 8 blocks, + spatial/temporal norm
    assert all(m.eps == 1e-6 for m in others)


def test_blocks_like_poseformer(poseformer: PoseLifter) -> None:
    """Width 32/544, 8 heads, MLP ratio 2 with GELU, qkv bias, drop path linspace(0, 0.1, 4)."""
    expected_dp = torch.linspace(0, 0.1, 4).tolist()
    for blocks, width in ((poseformer.spatial_blocks, 32), (poseformer.temporal_blocks, 544)):
        assert len(blocks) == 4
        for blk, dp in zip(blocks, expected_dp, strict=True):
            assert blk.attn.heads == 8 and blk.attn.qkv.bias is not None
            assert blk.attn.qkv.in_features == width
            assert blk.mlp.fc1.out_features == 2 * width
            assert isinstance(blk.mlp.act, nn.GELU)
            assert blk.drop_path.p == pytest.approx(dp)
            assert blk.extra is None
    assert tuple(poseformer.spatial_pos.shape) == (1, 17, 32)
    assert tuple(poseformer.temporal_pos.shape) == (1, 27, 544)
    assert poseformer.weighted_mean.in_channels == 27 and poseformer.weighted_mean.out_channels == 1
    assert poseformer.head_linear.out_features == 51
