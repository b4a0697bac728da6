"""PoseLifter: PoseFormer-style spatial-temporal transformer with SAM/TAM (paper Fig. 4).

    x (B, T, J, 2) ─ Linear(2→Ds) + spatial pos (1, J, Ds) ─ [spatial block (+SAM)] × Ls ─ LN
      → flatten joints: one token of C = J·Ds per frame (B, T, C)
      ─ + temporal pos (1, T, C) ─ [temporal block (+TAM)] × Lt ─ LN
      → head "sequence": LN + Linear(C→3J) per frame           → (B, T, J, 3)
        head "center":   Conv1d(T→1, k=1) + LN + Linear(C→3J)   → (B, 1, J, 3)

With ``use_sam=use_tam=False, head="center"`` this is PoseFormer exactly (same modules, same
parameter count: 9.564M/9.574M/9.603M/9.691M at T=9/27/81/243). Output: root-relative metres.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from pose3d.attention import AttnImpl, LayerImpl
from pose3d.blocks import POSITIONS, Block, Position
from pose3d.init import MODULE_INITS, ModuleInit, identity_init_
from pose3d.sam import SpatialAttentionModule
from pose3d.tam import TamMode, TemporalAttentionModule

Head = Literal["sequence", "center"]
HEADS: tuple[str, ...] = get_args(Head)
MAX_FRAMES = 243


class PoseLifter(nn.Module):
    """2D pose window ``(B, T, J, 2)`` → 3D poses ``(B, T, J, 3)`` or ``(B, 1, J, 3)``.

    Args:
        frames: window length T (odd, 1..243); sizes the temporal positional embedding.
        num_joints: J, joints per frame.
        in_chans: input channels per joint (2: x, y).
        out_chans: output channels per joint (3: x, y, z).
        spatial_dim: per-joint width Ds (the temporal width is J·Ds).
        spatial_depth: number of spatial transformer blocks.
        temporal_depth: number of temporal transformer blocks.
        spatial_heads: attention heads of the spatial blocks.
        temporal_heads: attention heads of the temporal blocks.
        mlp_ratio: MLP hidden width / block width (PoseFormer: 2).
        qkv_bias: bias of the Q/K/V projections (PoseFormer: True).
        norm_eps: LayerNorm epsilon of the blocks and stage norms (PoseFormer: 1e-6).
        head_norm_eps: eps of the head's LayerNorm; PoseFormer builds it with
            ``nn.LayerNorm``'s default 1e-5 (only the blocks and stage norms use 1e-6).
        dropout: dropout after the positional embeddings, attention projection and MLP (paper 0.1).
        attn_dropout: dropout on the attention weights.
        drop_path: stochastic depth, linearly increasing 0 → drop_path over each stage's blocks.
        use_sam: a Spatial Attention Module in every spatial block (see ``pose3d.sam``).
        sam_position: where SAM sits in the block: before_msa, after_msa (paper) or after_mlp.
        sam_kernel: SAM depth-wise kernel length along the joint axis (odd).
        sam_groups: SAM GroupNorm groups (must divide spatial_dim).
        use_tam: a Temporal Attention Module in every temporal block (see ``pose3d.tam``).
        tam_position: where TAM sits in the block: before_msa, after_msa (paper) or after_mlp.
        tam_mode: TAM reading: frame (T×T frame correlation), joint or channel.
        head: "sequence" (paper: per-frame regression) or "center" (PoseFormer weighted mean).
        attn_impl: attention kernel: auto (fused SDPA, chunked on CUDA), sdpa or math.
        attn_chunk: most items per fused attention call (None: the safe default on CUDA).
        layer_impl: fast (view-based SAM/TAM/MSA layouts, the default) or reference (the
            literal formulation); same weights, same numbers (see ``pose3d.attention``).
        activation_checkpointing: recompute each block in the backward pass instead of storing
            its activations (less memory for long windows / big batches, ~1/3 more compute).
        sam_tam_init: "default" (PyTorch's init, as every other layer) or "identity" (the last
            map of each SAM/TAM residual branch starts at zero, so the network starts as
            PoseFormer; see ``pose3d.init``). Does not change the state-dict keys.
    """

    def __init__(
        self,
        frames: int = 81,
        num_joints: int = 17,
        in_chans: int = 2,
        out_chans: int = 3,
        spatial_dim: int = 32,
        spatial_depth: int = 4,
        temporal_depth: int = 4,
        spatial_heads: int = 8,
        temporal_heads: int = 8,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        head_norm_eps: float = 1e-5,
        dropout: float = 0.1,
        attn_dropout: float = 0.0,
        drop_path: float = 0.1,
        use_sam: bool = True,
        sam_position: Position = "after_msa",
        sam_kernel: int = 5,
        sam_groups: int = 8,
        use_tam: bool = True,
        tam_position: Position = "after_msa",
        tam_mode: TamMode = "frame",
        head: Head = "sequence",
        attn_impl: AttnImpl = "auto",
        attn_chunk: int | None = None,
        layer_impl: LayerImpl = "fast",
        activation_checkpointing: bool = False,
        sam_tam_init: ModuleInit = "default",
    ) -> None:
        super().__init__()
        if sam_tam_init not in MODULE_INITS:
            raise ValueError(f"sam_tam_init must be one of {MODULE_INITS}, got {sam_tam_init!r}")
        if not (1 <= frames <= MAX_FRAMES and frames % 2 == 1):
            raise ValueError(f"frames must be odd and in 1..{MAX_FRAMES}, got {frames}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        for name, pos in (("sam_position", sam_position), ("tam_position", tam_position)):
            if pos not in POSITIONS:
                raise ValueError(f"{name} must be one of {POSITIONS}, got {pos!r}")
        self.frames, self.num_joints, self.out_chans, self.head = (
            frames,
            num_joints,
            out_chans,
            head,
        )
        self.activation_checkpointing = activation_checkpointing
        width = num_joints * spatial_dim

        def block(dim: int, heads: int, dp: float, extra: nn.Module | None, pos: str) -> Block:
            return Block(dim, heads, mlp_ratio, qkv_bias, dropout, attn_dropout, dp, norm_eps,
                         attn_impl, attn_chunk, extra, pos, layer_impl)  # fmt: skip

        self.joint_embed = nn.Linear(in_chans, spatial_dim)
        self.spatial_pos = nn.Parameter(torch.zeros(1, num_joints, spatial_dim))
        self.pos_drop = nn.Dropout(dropout)
        sdp = torch.linspace(0, drop_path, spatial_depth).tolist()
        self.spatial_blocks = nn.ModuleList(
            block(
                spatial_dim,
                spatial_heads,
                sdp[i],
                SpatialAttentionModule(spatial_dim, sam_kernel, sam_groups, layer_impl=layer_impl)
                if use_sam
                else None,
                sam_position,
            )  # fmt: skip
            for i in range(spatial_depth)
        )
        self.spatial_norm = nn.LayerNorm(spatial_dim, eps=norm_eps)

        self.temporal_pos = nn.Parameter(torch.zeros(1, frames, width))
        tdp = torch.linspace(0, drop_path, temporal_depth).tolist()
        self.temporal_blocks = nn.ModuleList(
            block(
                width,
                temporal_heads,
                tdp[i],
                TemporalAttentionModule(
                    num_joints, spatial_dim, tam_mode, qkv_bias, norm_eps, attn_impl, layer_impl
                )
                if use_tam
                else None,
                tam_position,
            )  # fmt: skip
            for i in range(temporal_depth)
        )
        self.temporal_norm = nn.LayerNorm(width, eps=norm_eps)

        # PoseFormer's learned weighted mean over frames; only the centre head has it.
        self.weighted_mean = nn.Conv1d(frames, 1, kernel_size=1) if head == "center" else None
        self.head_norm = nn.LayerNorm(width, eps=head_norm_eps)
        self.head_linear = nn.Linear(width, num_joints * out_chans)
        if sam_tam_init == "identity":
            for blk in (*self.spatial_blocks, *self.temporal_blocks):
                if blk.extra is not None:
                    identity_init_(blk.extra)

    def forward(self, x: Tensor) -> Tensor:
        b, t, j, c = x.shape
        if t != self.frames or j != self.num_joints:
            raise ValueError(
                f"input (B, T, J, C)={tuple(x.shape)} does not match frames={self.frames}, "
                f"num_joints={self.num_joints}"
            )
        # Spatial stage: every frame on its own, tokens = joints.
        s = self.pos_drop(self.joint_embed(x.reshape(b * t, j, c)) + self.spatial_pos)
        for blk in self.spatial_blocks:
            s = self._run(blk, s)
        s = self.spatial_norm(s)
        # Temporal stage: tokens = frames, each the joint-major concatenation of joint features.
        z = self.pos_drop(s.reshape(b, t, -1) + self.temporal_pos)
        for blk in self.temporal_blocks:
            z = self._run(blk, z)
        z = self.temporal_norm(z)
        if self.weighted_mean is not None:
            z = self.weighted_mean(z)  # (B, 1, C)
        out = self.head_linear(self.head_norm(z))
        return out.reshape(b, z.shape[1], j, self.out_chans)

    def _run(self, blk: nn.Module, x: Tensor) -> Tensor:
        if self.activation_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(blk, x, use_reentrant=False)
        return blk(x)

    def center_frame(self, pred: Tensor) -> Tensor:
        """The prediction of the window's centre frame: ``(B, T|1, J, 3)`` → ``(B, J, 3)``."""
        return pred[:, pred.shape[1] // 2]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
