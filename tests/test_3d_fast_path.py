"""The fast layer implementations equal the reference ones: same weights, outputs and gradients."""

from __future__ import annotations

import pytest
import torch

from pose3d.attention import LAYER_IMPLS, MultiHeadAttention
from pose3d.lifter import PoseLifter
from pose3d.sam import SpatialAttentionModule
from pose3d.tam import TAM_MODES, TemporalAttentionModule

pytestmark = pytest.mark.usefixtures("one_thread")


SMALL = dict(spatial_dim=16, spatial_depth=2, temporal_depth=2, spatial_heads=4, temporal_heads=4,
             sam_groups=4, dropout=0.0, drop_path=0.0)  # fmt: skip
POSEFORMER = dict(use_sam=False, use_tam=False, head="center")


def _run(impl: str, frames: int, x: torch.Tensor, **kw) -> tuple[torch.Tensor, dict, PoseLifter]:
    torch.manual_seed(0)
    model = PoseLifter(frames, layer_impl=impl, **kw)
    out = model(x)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}, model


def _assert_same(a: tuple, b: tuple, atol: float, rtol: float) -> None:
    """Outputs to ``atol``/``rtol``; each gradient relative to its largest element to 10× that
    (fp32 sums of thousands of terms in another order differ by a few 1e-6)."""
    torch.testing.assert_close(a[0], b[0], atol=atol, rtol=rtol)
    assert a[1].keys() == b[1].keys()
    for name in a[1]:
        scale = a[1][name].abs().max().clamp_min(1e-12)
        torch.testing.assert_close(a[1][name] / scale, b[1][name] / scale, atol=10 * atol,
                                   rtol=10 * rtol, msg=lambda m, n=name: f"{n}: {m}")  # fmt: skip


@pytest.mark.parametrize("tam_mode", TAM_MODES)
def test_fast_equals_reference_outputs_and_grads_fp32(tam_mode: str) -> None:
    x = torch.randn(3, 9, 17, 2, generator=torch.Generator().manual_seed(1))
    ref = _run("reference", 9, x, tam_mode=tam_mode, **SMALL)
    fast = _run("fast", 9, x, tam_mode=tam_mode, **SMALL)
    assert ref[2].state_dict().keys() == fast[2].state_dict().keys()
    _assert_same(ref, fast, atol=2e-6, rtol=1e-5)


def test_fast_equals_reference_full_size_poseformer_and_paper_model() -> None:
    """The real widths (32 per joint, 8 heads of width 4 / 68) at T=27."""
    x = torch.randn(2, 27, 17, 2, generator=torch.Generator().manual_seed(2))
    for kw in (POSEFORMER, {}):
        kw = dict(kw, dropout=0.0, drop_path=0.0)
        _assert_same(_run("reference", 27, x, **kw), _run("fast", 27, x, **kw), 5e-6, 1e-5)


def test_fast_loads_reference_state_dict() -> None:
    torch.manual_seed(0)
    ref = PoseLifter(9, layer_impl="reference", **SMALL).eval()
    fast = PoseLifter(9, **SMALL).eval()
    fast.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 9, 17, 2)
    torch.testing.assert_close(fast(x), ref(x), atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_sam_fast_equals_reference(kernel: int) -> None:
    torch.manual_seed(0)
    ref = SpatialAttentionModule(8, kernel, 2, layer_impl="reference")
    fast = SpatialAttentionModule(8, kernel, 2)
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(6, 17, 8)
    xr, xf = x.clone().requires_grad_(), x.clone().requires_grad_()
    g = torch.randn(6, 17, 8)
    yr, yf = ref(xr), fast(xf)
    yr.backward(g)
    yf.backward(g)
    torch.testing.assert_close(yf, yr, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(xf.grad, xr.grad, atol=1e-6, rtol=1e-5)
    for (n, pr), pf in zip(ref.named_parameters(), fast.parameters(), strict=True):
        torch.testing.assert_close(pf.grad, pr.grad, atol=1e-5, rtol=1e-5, msg=n)


@pytest.mark.parametrize("mode", TAM_MODES)
def test_tam_fast_equals_reference_with_and_without_bias(mode: str) -> None:
    for bias in (True, False):
        torch.manual_seed(0)
        ref = TemporalAttentionModule(17, 4, mode, bias, layer_impl="reference")
        fast = TemporalAttentionModule(17, 4, mode, bias)
        fast.load_state_dict(ref.state_dict())
        x = torch.randn(2, 7, 68)
        torch.testing.assert_close(fast(x), ref(x), atol=1e-6, rtol=1e-5)


def test_mha_fast_equals_reference_grads() -> None:
    torch.manual_seed(0)
    ref = MultiHeadAttention(32, 8, layer_impl="reference", attn_impl="math")
    fast = MultiHeadAttention(32, 8)
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(5, 17, 32)
    ref(x).square().sum().backward()
    fast(x).square().sum().backward()
    for pr, pf in zip(ref.parameters(), fast.parameters(), strict=True):
        torch.testing.assert_close(pf.grad, pr.grad, atol=1e-5, rtol=1e-5)


def test_fast_equals_reference_under_bf16_autocast() -> None:
    """bf16 keeps ~3 significant digits; the two paths round differently, not more."""
    x = torch.randn(2, 9, 17, 2, generator=torch.Generator().manual_seed(3))
    outs = []
    for impl in LAYER_IMPLS:
        torch.manual_seed(0)
        model = PoseLifter(9, layer_impl=impl, **SMALL)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outs.append(model(x).float())
    fp32 = _run("reference", 9, x, **SMALL)[0]
    err = (outs[0] - outs[1]).abs().max()
    assert err <= 0.05 * fp32.abs().max(), err
    assert err <= 2 * (outs[0] - fp32).abs().max() + 1e-6  # no worse than bf16 itself


def test_unknown_layer_impl_rejected() -> None:
    with pytest.raises(ValueError, match="layer_impl"):
        PoseLifter(9, layer_impl="turbo", **SMALL)


@pytest.mark.gpu
def test_cuda_fast_bf16_matches_reference_and_chunks_past_grid_limit() -> None:
    """On CUDA: B·T·heads = 8·1200·8 > 65,535 exercises the chunked SDPA; fast bf16 vs reference
    fp32 math agree to bf16 tolerance, gradients included."""
    dev = torch.device("cuda")
    x = torch.randn(8, 81, 17, 2, device=dev)
    res = []
    for impl, attn, dtype in (("reference", "math", None), ("fast", "auto", torch.bfloat16)):
        torch.manual_seed(0)
        model = PoseLifter(81, layer_impl=impl, attn_impl=attn, dropout=0.0, drop_path=0.0).to(dev)
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(x).float()
        out.square().mean().backward()
        res.append((out.detach(), model.joint_embed.weight.grad.float().clone()))
    scale = res[0][0].abs().max()
    assert (res[0][0] - res[1][0]).abs().max() <= 0.03 * scale
    g = res[0][1]
    assert (g - res[1][1]).abs().max() <= 0.05 * g.abs().max()
    big = torch.randn(70_000 // 8 + 1, 8, 17, 4, device=dev)
    from pose3d.attention import attention_math, attention_sdpa

    torch.testing.assert_close(attention_sdpa(big, big, big), attention_math(big, big, big),
                               atol=1e-4, rtol=1e-4)  # fmt: skip


def test_short_training_run_fast_and_reference_reach_the_same_loss() -> None:
    """25 Adam steps on one synthetic batch: both paths follow the same loss curve (they differ
    only by fp32 rounding, which Adam does not amplify over so few steps)."""
    gen = torch.Generator().manual_seed(4)
    x, y = torch.randn(4, 9, 17, 2, generator=gen), 0.2 * torch.randn(4, 9, 17, 3, generator=gen)
    tiny = dict(SMALL, spatial_dim=8, spatial_depth=1, temporal_depth=1, spatial_heads=2,
                temporal_heads=2, sam_groups=2)  # fmt: skip
    curves = []
    for impl in LAYER_IMPLS:
        torch.manual_seed(0)
        model = PoseLifter(9, layer_impl=impl, **tiny)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        losses = []
        for _ in range(25):
            loss = (model(x) - y).norm(dim=-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        curves.append(torch.tensor(losses))
    assert curves[0][-1] < 0.7 * curves[0][0]  # it does learn
    torch.testing.assert_close(curves[1], curves[0], atol=1e-4, rtol=1e-3)


def test_auto_attention_uses_math_for_bf16_on_cpu() -> None:
    """CPU bf16: "auto" is the math path (its matmuls use the bf16 units; CPU SDPA does not)."""
    from pose3d.attention import attention, attention_math, attention_sdpa

    q, k, v = (torch.randn(6, 8, 17, 4).bfloat16() for _ in range(3))
    assert torch.equal(attention(q, k, v, "auto"), attention_math(q, k, v))
    q32, k32, v32 = q.float(), k.float(), v.float()
    assert torch.equal(attention(q32, k32, v32, "auto"), attention_sdpa(q32, k32, v32))
