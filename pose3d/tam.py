"""Temporal Attention Module (TAM, paper §II.B.3, Eq. 7): frame-to-frame correlation.

The temporal stage carries one token per frame, ``(B, T, J·D)``, which is the frame feature
``P_i ∈ R^{J×D}`` flattened (J joints × D spatial channels; the temporal positional embedding was
added at the stage input, so the features already "combine the positional information with the
frames"). Our reading of the paper (default ``mode="frame"``)::

    P̂ = LayerNorm(P)                                    (B, T, J, D)
    Q, K, V = P̂ W_q, P̂ W_k, P̂ W_v                        1×1 convs over D, shared by the joints
    C_ij = Σ_{J,D} Q_i K_j / √(J·D)                      (B, T, T) dot product of frames i and j
    P ← softmax_j(C) V + P                               residual

"1×1 convolution" is taken literally: a pointwise map over the D channels of each joint, not a
dense map of the whole 544-d frame (which would cost 3 × 296k parameters per block, far more than
the ≈0.26M the paper's 9.86M vs 9.59M suggests). The pre-LayerNorm is ours (the paper gives no
normalisation); it keeps the dot products of the un-normalised residual stream from saturating
the softmax. The scale 1/√(J·D) is the usual scaled dot product.

Alternatives (constructor ``mode``):

- ``"joint"``: one correlation per joint, ``C^j_ij = Σ_D Q_ij K_jj`` (J heads of width D): the
  per-joint temporal attention of MixSTE-like models.
- ``"channel"``: the "pairwise feature correlations using the outer product ... summed over F"
  wording read as a D×D channel correlation summed over frames and joints,
  ``C_de = Σ_{T,J} Q_d K_e / √(T·J)``, applied as ``V C^T`` (cross-covariance attention).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pose3d.attention import AttnImpl, LayerImpl, attention, check_layer_impl

TamMode = Literal["frame", "joint", "channel"]
TAM_MODES: tuple[str, ...] = get_args(TamMode)


class TemporalAttentionModule(nn.Module):
    """TAM on temporal tokens: ``(B, T, J·D)`` → ``(B, T, J·D)`` (residual inside).

    Args:
        num_joints: J, the joints flattened into each frame token.
        joint_dim: D, the per-joint width (the token width is J·D).
        mode: reading of the paper's correlation: "frame" (T×T frame-to-frame, default),
            "joint" (per-joint T×T) or "channel" (D×D over frames and joints).
        qkv_bias: bias of the three 1×1 convolutions (one Linear over D).
        eps: epsilon of the pre-LayerNorm.
        attn_impl: attention kernel for "frame"/"joint" (see ``pose3d.attention``).
        layer_impl: "fast" applies the three 1×1 convolutions as three projections, so Q, K and
            V come out contiguous and the frame tokens are views (no copies); "reference" runs
            one projection and splits it. Same weights, same numbers.
    """

    def __init__(
        self,
        num_joints: int,
        joint_dim: int,
        mode: TamMode = "frame",
        qkv_bias: bool = True,
        eps: float = 1e-6,
        attn_impl: AttnImpl = "auto",
        layer_impl: LayerImpl = "fast",
    ) -> None:
        super().__init__()
        self.layer_impl = check_layer_impl(layer_impl)
        if mode not in TAM_MODES:
            raise ValueError(f"tam_mode must be one of {TAM_MODES}, got {mode!r}")
        self.num_joints, self.joint_dim, self.mode = num_joints, joint_dim, mode
        self.attn_impl = attn_impl
        self.norm = nn.LayerNorm(joint_dim, eps=eps)
        self.qkv = nn.Linear(joint_dim, 3 * joint_dim, bias=qkv_bias)  # the three 1×1 convs

    def forward(self, x: Tensor) -> Tensor:
        b, t, c = x.shape
        j, d = self.num_joints, self.joint_dim
        if c != j * d:
            raise ValueError(f"TAM expects tokens of width {j}×{d}={j * d}, got {c}")
        p = self.norm(x.view(b, t, j, d))
        if self.layer_impl == "fast":  # contiguous (B, T, J, D) each: reshapes below are views
            bias = self.qkv.bias
            ws, bs = self.qkv.weight.split(d), (None,) * 3 if bias is None else bias.split(d)
            q, k, v = (F.linear(p, w, bb) for w, bb in zip(ws, bs, strict=True))
        else:
            q, k, v = self.qkv(p).chunk(3, dim=-1)  # (B, T, J, D) each
        if self.mode == "frame":  # one head of width J·D over the T frames
            out = attention(q.reshape(b, 1, t, c), k.reshape(b, 1, t, c), v.reshape(b, 1, t, c),
                            self.attn_impl)  # fmt: skip
        elif self.mode == "joint":  # J heads of width D
            out = attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                            self.attn_impl).transpose(1, 2)  # fmt: skip
        else:  # channel: (B, D, D) correlation pooled over frames and joints
            corr = torch.einsum("btjd,btje->bde", q, k) * (t * j) ** -0.5
            out = torch.einsum("btje,bde->btjd", v, corr.float().softmax(-1).to(v.dtype))
        return x + out.reshape(b, t, c)
