"""Multi-head self-attention with a fused fast path that survives huge batches.

The spatial stage attends over 17 joints with 8 heads of width 4, once per frame, so the batch of
attention problems is ``B·T·heads`` (331,776 at B=512, T=81). The fused CUDA kernels behind
``F.scaled_dot_product_attention`` put that batch on a grid axis limited to 65,535 blocks and fail
with "CUDA error: invalid argument" above it; on CUDA the fast path therefore splits the batch into
chunks of at most ``SDPA_MAX_BATCH_HEADS // heads`` problems. The "math" path is the explicit
``softmax(QKᵀ/√d)V`` reference.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Largest (batch × heads) handed to one fused SDPA call on CUDA: the 65,535 grid-dimension limit.
SDPA_MAX_BATCH_HEADS = 65_535
AttnImpl = Literal["auto", "sdpa", "math"]
ATTN_IMPLS: tuple[str, ...] = get_args(AttnImpl)
# How the layers around the attention kernel lay out their tensors: "fast" (views instead of
# copies, channels-last SAM convolutions, split TAM projections) or "reference" (the literal
# formulation, op for op the official PoseFormer in its configuration). Same weights and numbers.
LayerImpl = Literal["fast", "reference"]
LAYER_IMPLS: tuple[str, ...] = get_args(LayerImpl)


def check_layer_impl(impl: str) -> str:
    """``impl`` if it is one of :data:`LAYER_IMPLS`, else a ValueError naming the choices."""
    if impl not in LAYER_IMPLS:
        raise ValueError(f"layer_impl must be one of {LAYER_IMPLS}, got {impl!r}")
    return impl


def attention_math(q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0) -> Tensor:
    """Reference attention. ``q, k, v``: ``(N, H, L, d)`` → ``(N, H, L, d)``."""
    scores = (q * (q.shape[-1] ** -0.5)) @ k.transpose(-2, -1)
    weights = scores.float().softmax(dim=-1).to(q.dtype)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p, training=True)
    return weights @ v


def attention_sdpa(
    q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0, max_batch: int | None = None
) -> Tensor:
    """Fused attention, chunked along ``N`` so each call sees at most ``max_batch`` items.

    ``q, k, v``: ``(N, H, L, d)``. ``max_batch=None``: ``SDPA_MAX_BATCH_HEADS // H`` on CUDA,
    unchunked elsewhere (the CPU kernels have no grid limit).
    """
    n = q.shape[0]
    if max_batch is None:
        max_batch = max(1, SDPA_MAX_BATCH_HEADS // q.shape[1]) if q.is_cuda else n
    if n <= max_batch:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    outs = [
        F.scaled_dot_product_attention(qc, kc, vc, dropout_p=dropout_p)
        for qc, kc, vc in zip(
            q.split(max_batch), k.split(max_batch), v.split(max_batch), strict=True
        )
    ]
    return torch.cat(outs)


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    impl: AttnImpl = "auto",
    dropout_p: float = 0.0,
    max_batch: int | None = None,
) -> Tensor:
    """Dispatch: ``impl`` ∈ {"auto", "sdpa", "math"}; "auto" is SDPA (chunked on CUDA), except
    for bf16/fp16 on the CPU: there the math path's batched matmuls use the CPU's bf16 units and
    the CPU SDPA kernel does not (a bf16 train step of the PoseFormer configuration ran at 0.62×
    the math path's speed on an AMX Xeon)."""
    low_precision_cpu = not q.is_cuda and q.dtype in (torch.bfloat16, torch.float16)
    if impl == "math" or (impl == "auto" and low_precision_cpu):
        return attention_math(q, k, v, dropout_p)
    if impl in ("sdpa", "auto"):
        return attention_sdpa(q, k, v, dropout_p, max_batch)
    raise ValueError(f"attn_impl must be one of {ATTN_IMPLS}, got {impl!r}")


class MultiHeadAttention(nn.Module):
    """ViT multi-head self-attention: ``(N, L, C)`` → ``(N, L, C)``.

    Same parameters as the timm/PoseFormer ``Attention`` (``qkv`` Linear(C→3C), ``proj``
    Linear(C→C)), so the baseline's parameter count is unchanged.

    Args:
        dim: token width C (divisible by ``heads``).
        heads: attention heads.
        qkv_bias: bias of the fused Q/K/V projection.
        attn_drop: dropout on the attention weights (training only).
        proj_drop: dropout after the output projection.
        attn_impl: "auto" (fused SDPA, chunked on CUDA), "sdpa" or "math" (explicit reference).
        attn_chunk: most items per fused call; None: the CUDA grid-safe default.
        layer_impl: "fast" splits Q/K/V with one unbind (its backward is one stack), "reference"
            indexes ``qkv[0..2]`` as the official code does (each index backward zero-fills a
            full-size gradient). Same numbers.
    """

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        attn_impl: AttnImpl = "auto",
        attn_chunk: int | None = None,
        layer_impl: LayerImpl = "fast",
    ) -> None:
        super().__init__()
        self.layer_impl = check_layer_impl(layer_impl)
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        if attn_impl not in ATTN_IMPLS:
            raise ValueError(f"attn_impl must be one of {ATTN_IMPLS}, got {attn_impl!r}")
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.attn_drop = attn_drop
        self.attn_impl = attn_impl
        self.attn_chunk = attn_chunk

    def forward(self, x: Tensor) -> Tensor:
        n, length, c = x.shape
        qkv = self.qkv(x).reshape(n, length, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        drop = self.attn_drop if self.training else 0.0
        q, k, v = qkv.unbind(0) if self.layer_impl == "fast" else (qkv[0], qkv[1], qkv[2])
        out = attention(q, k, v, self.attn_impl, drop, self.attn_chunk)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(n, length, c)))
