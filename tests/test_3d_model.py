"""PoseLifter: shapes, PoseFormer parameter counts, attention paths, module positions, overfit."""

from __future__ import annotations

import pytest
import torch

from pose3d.attention import MultiHeadAttention, attention, attention_math, attention_sdpa
from pose3d.blocks import POSITIONS, Block
from pose3d.lifter import PoseLifter, count_parameters
from pose3d.sam import SpatialAttentionModule
from pose3d.tam import TAM_MODES, TemporalAttentionModule

pytestmark = pytest.mark.usefixtures("one_thread")


TINY = dict(spatial_dim=8, spatial_depth=1, temporal_depth=1, spatial_heads=2, temporal_heads=2,
            sam_groups=2, dropout=0.0, drop_path=0.0)  # fmt: skip


@pytest.mark.parametrize("frames", [1, 9, 27, 81])
@pytest.mark.parametrize("head", ["sequence", "center"])
def test_output_shapes(frames: int, head: str) -> None:
    torch.manual_seed(0)
    model = PoseLifter(frames, head=head, **TINY)
    out = model(torch.randn(2, frames, 17, 2))
    assert out.shape == (2, frames if head == "sequence" else 1, 17, 3)
    assert torch.isfinite(out).all()


@torch.no_grad()
def test_full_size_243_frames_shape() -> None:
    model = PoseLifter(243).eval()
    assert model(torch.randn(1, 243, 17, 2)).shape == (1, 243, 17, 3)


@pytest.mark.parametrize(
    "frames, expected", [(9, 9_563_645), (27, 9_573_455), (81, 9_602_885), (243, 9_691_175)]
)
def test_poseformer_parameter_count(frames: int, expected: int) -> None:
    """SAM/TAM off + centre head = PoseFormer: 9.564/9.574/9.603/9.691 M (±0.002 M)."""
    n = count_parameters(PoseLifter(frames, use_sam=False, use_tam=False, head="center"))
    paper = {9: 9.564e6, 27: 9.574e6, 81: 9.603e6, 243: 9.691e6}[frames]
    assert abs(n - paper) <= 2e3
    # Hand count: embed 96 + spatial pos 544 + 4×8544 + LN 64 + temporal pos T·544
    # + 4×2,373,472 + LN 1088 + Conv1d (T+1) + LN 1088 + Linear 27,795.
    assert (
        n
        == expected
        == 96
        + 544
        + 4 * 8544
        + 64
        + frames * 544
        + 4 * 2_373_472
        + 1088
        + (frames + 1)
        + 1088
        + 27_795
    )


def test_sam_tam_parameter_cost() -> None:
    """SAM = 2 depth-wise k5 convs + GroupNorm; TAM = LayerNorm + 1×1 conv to Q, K, V over D=32."""
    assert count_parameters(SpatialAttentionModule(32)) == 2 * (32 * 5 + 32) + 2 * 32
    assert count_parameters(TemporalAttentionModule(17, 32)) == 2 * 32 + 32 * 96 + 96


def test_even_or_too_many_frames_rejected() -> None:
    for bad in (0, 8, 245):
        with pytest.raises(ValueError, match="odd"):
            PoseLifter(bad, **TINY)
    model = PoseLifter(9, **TINY)
    with pytest.raises(ValueError, match="frames=9"):
        model(torch.randn(1, 7, 17, 2))


def test_attention_paths_agree_and_chunking_is_exact() -> None:
    torch.manual_seed(0)
    q, k, v = (torch.randn(37, 8, 17, 4) for _ in range(3))
    ref = attention_math(q, k, v)
    # Hand check on one (query, head): softmax(q·k/√d) v.
    w = torch.softmax(q[3, 2] @ k[3, 2].T / 2.0, dim=-1)
    torch.testing.assert_close(ref[3, 2], w @ v[3, 2])
    torch.testing.assert_close(attention_sdpa(q, k, v), ref, atol=1e-5, rtol=1e-5)
    for chunk in (1, 5, 36, 37, 1000):
        torch.testing.assert_close(attention_sdpa(q, k, v, max_batch=chunk), ref, atol=1e-5,
                                   rtol=1e-5)  # fmt: skip
    with pytest.raises(ValueError, match="attn_impl"):
        attention(q, k, v, impl="flash")


def test_lifter_math_and_chunked_sdpa_give_same_output_and_grads() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 5, 17, 2)
    outs, grads = [], []
    for impl, chunk in (("math", None), ("sdpa", None), ("sdpa", 2)):
        torch.manual_seed(1)
        model = PoseLifter(5, attn_impl=impl, attn_chunk=chunk, **TINY)
        out = model(x)
        out.square().sum().backward()
        outs.append(out.detach())
        grads.append(model.joint_embed.weight.grad.clone())
    for o, g in zip(outs[1:], grads[1:], strict=True):
        torch.testing.assert_close(o, outs[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(g, grads[0], atol=1e-4, rtol=1e-3)


def test_mha_matches_explicit_computation() -> None:
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, heads=2, attn_impl="sdpa").eval()
    x = torch.randn(4, 5, 8)
    q, k, v = mha.qkv(x).chunk(3, dim=-1)
    heads = [
        torch.softmax(q[..., h * 4 : h * 4 + 4] @ k[..., h * 4 : h * 4 + 4].transpose(1, 2) / 2, -1)
        @ v[..., h * 4 : h * 4 + 4]
        for h in range(2)
    ]
    torch.testing.assert_close(mha(x), mha.proj(torch.cat(heads, -1)), atol=1e-5, rtol=1e-5)


def test_sam_acts_per_frame_with_residual() -> None:
    """Frames never interact, and the module is the identity plus a residual branch."""
    torch.manual_seed(0)
    sam = SpatialAttentionModule(8, norm_groups=2).eval()
    x = torch.randn(3, 17, 8)
    y = sam(x)
    x2 = x.clone()
    x2[1] += torch.randn(17, 8)  # perturb frame 1 only
    y2 = sam(x2)
    torch.testing.assert_close(y2[0], y[0])
    torch.testing.assert_close(y2[2], y[2])
    # With the second conv zeroed the module is exactly the identity (residual).
    torch.nn.init.zeros_(sam.conv2.weight)
    torch.nn.init.zeros_(sam.conv2.bias)
    torch.testing.assert_close(sam(x), x)


@pytest.mark.parametrize("mode", TAM_MODES)
def test_tam_modes_residual_and_frame_mixing(mode: str) -> None:
    torch.manual_seed(0)
    tam = TemporalAttentionModule(17, 4, mode=mode)
    x = torch.randn(2, 5, 68)
    y = tam(x)
    assert y.shape == x.shape
    x2 = x.clone()
    x2[0, 4] += torch.randn(68)  # not a constant: LayerNorm would remove that
    y2 = tam(x2)
    torch.testing.assert_close(y2[1], y[1])  # sequences never interact
    assert not torch.allclose(y2[0, 0], y[0, 0])  # frame 0 sees frame 4
    with torch.no_grad():  # V = 0 → identity
        tam.qkv.weight[8:].zero_()
        tam.qkv.bias[8:].zero_()
    torch.testing.assert_close(tam(x), x)


def test_tam_frame_mode_equals_hand_formula() -> None:
    torch.manual_seed(0)
    tam = TemporalAttentionModule(3, 4, mode="frame")
    x = torch.randn(1, 5, 12)
    p = tam.norm(x.view(1, 5, 3, 4))
    ws, bs = tam.qkv.weight.split(4), tam.qkv.bias.split(4)
    q, k, v = (p @ w.T + b for w, b in zip(ws, bs, strict=True))
    c = torch.einsum("tjd,sjd->ts", q[0], k[0]) / (12**0.5)
    expected = x[0] + (c.softmax(-1) @ v[0].reshape(5, 12))
    torch.testing.assert_close(tam(x)[0], expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("position", POSITIONS)
def test_every_position_runs_and_matters(position: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 9, 17, 2)
    kw = dict(TINY, sam_position=position, tam_position=position)
    out = PoseLifter(9, **kw)(x)
    assert out.shape == (2, 9, 17, 3)
    torch.manual_seed(0)
    base = PoseLifter(9, **dict(TINY, use_sam=False, use_tam=False))
    assert count_parameters(base) < count_parameters(PoseLifter(9, **kw))


def test_block_position_order() -> None:
    """The extra module sees the input before MSA, the MSA output after MSA, etc."""
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append(x.clone())
            return x

    torch.manual_seed(0)
    x = torch.randn(2, 3, 8)
    for pos in POSITIONS:
        seen.clear()
        torch.manual_seed(0)
        blk = Block(8, heads=2, extra=Probe(), extra_position=pos).eval()
        out = blk(x)
        after_msa = x + blk.attn(blk.norm1(x))
        want = {"before_msa": x, "after_msa": after_msa, "after_mlp": out}[pos]
        torch.testing.assert_close(seen[0], want)


def test_tiny_model_overfits_one_batch() -> None:
    torch.manual_seed(0)
    model = PoseLifter(9, **TINY)
    x = torch.randn(8, 9, 17, 2)
    y = torch.randn(8, 9, 17, 3) * 0.2
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        loss = (model(x) - y).norm(dim=-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])


def test_activation_checkpointing_same_output_and_grads() -> None:
    x = torch.randn(2, 5, 17, 2)
    grads = []
    for ckpt in (False, True):
        torch.manual_seed(0)
        model = PoseLifter(5, activation_checkpointing=ckpt, **TINY)
        out = model(x)
        out.square().sum().backward()
        grads.append((out.detach(), model.joint_embed.weight.grad.clone()))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


def test_saved_activations_scale_with_batch_and_sam_tam_cost_memory() -> None:
    from pose3d.bench import saved_activation_bytes

    one = saved_activation_bytes("poseformer", 1, 9, "32")
    two = saved_activation_bytes("poseformer", 2, 9, "32")
    three = saved_activation_bytes("poseformer", 3, 9, "32")
    assert two - one == three - two > 0  # linear in batch: per-sequence cost is well defined
    ours = saved_activation_bytes("ours", 2, 9, "32") - saved_activation_bytes("ours", 1, 9, "32")
    assert ours > two - one
