"""Pre-norm ViT block (PoseFormer/timm layout) with an optional extra module (SAM or TAM).

    before_msa:  x = extra(x)
                 x = x + DropPath(MSA(LN(x)))
    after_msa:   x = extra(x)            (paper default: "between the MSA and the MLP")
                 x = x + DropPath(MLP(LN(x)))
    after_mlp:   x = extra(x)

The extra module carries its own residual connection.
"""

from __future__ import annotations

from typing import Literal, get_args

from torch import Tensor, nn

from pose3d.attention import AttnImpl, LayerImpl, MultiHeadAttention

Position = Literal["before_msa", "after_msa", "after_mlp"]
POSITIONS: tuple[str, ...] = get_args(Position)


class DropPath(nn.Module):
    """Stochastic depth per sample: zero the branch with probability ``p``, rescale by 1/(1-p)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class Mlp(nn.Module):
    """Eq. 4: Linear → GELU → Dropout → Linear → Dropout. ``(..., C)`` → ``(..., C)``."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    """``(N, L, C)`` → ``(N, L, C)``; ``extra`` (or None) runs at ``extra_position``."""

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        eps: float = 1e-6,
        attn_impl: AttnImpl = "auto",
        attn_chunk: int | None = None,
        extra: nn.Module | None = None,
        extra_position: Position = "after_msa",
        layer_impl: LayerImpl = "fast",
    ) -> None:
        super().__init__()
        if extra_position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got {extra_position!r}")
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = MultiHeadAttention(dim, heads, qkv_bias, attn_drop, drop, attn_impl, attn_chunk,
                                       layer_impl)  # fmt: skip
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.extra = extra
        self.extra_position = extra_position

    def _extra(self, x: Tensor, where: str) -> Tensor:
        return self.extra(x) if self.extra is not None and self.extra_position == where else x

    def forward(self, x: Tensor) -> Tensor:
        x = self._extra(x, "before_msa")
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = self._extra(x, "after_msa")
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return self._extra(x, "after_mlp")
