"""Sliding-window lifting of a whole sequence: one edge-padded window per frame, batched.

The window for frame ``f`` covers frames ``f - T//2 .. f - T//2 + T - 1``; indices outside the
sequence are clamped to the first / last frame (``np.pad(..., "edge")`` replication, as in
VideoPose3D's test generator), so the first and last frames get a pose too.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from datamodules.skeleton import Skeleton, flip_pose


def window_indices(num_frames: int, frames: int, centers: np.ndarray | None = None) -> np.ndarray:
    """Frame indices of the window centred on each frame: ``(N, T)`` int64, edge clamped.

    ``centers`` (N,) defaults to every frame ``0..F-1``. The centre sits at position ``T // 2``.
    """
    if num_frames < 1:
        raise ValueError("cannot build windows over an empty sequence")
    if centers is None:
        centers = np.arange(num_frames)
    offsets = np.arange(frames) - frames // 2
    return np.clip(np.asarray(centers)[:, None] + offsets[None, :], 0, num_frames - 1)


def sliding_windows(seq: np.ndarray, frames: int) -> np.ndarray:
    """``(F, J, C)`` → ``(F, T, J, C)``: the edge-padded window centred on every frame."""
    return seq[window_indices(len(seq), frames)]


def _centre_output(out: torch.Tensor, frames: int) -> torch.Tensor:
    """Lifter output ``(B, T, J, 3)`` (sequence head) or ``(B, 1, J, 3)`` → centre ``(B, J, 3)``."""
    if out.shape[1] == 1:
        return out[:, 0]
    if out.shape[1] != frames:
        raise ValueError(f"lifter returned {out.shape[1]} frames for windows of {frames}")
    return out[:, frames // 2]


@torch.no_grad()
def lift_sequence(
    lifter: nn.Module,
    pose_2d: np.ndarray,
    frames: int,
    skeleton: Skeleton,
    batch_size: int = 256,
    flip_test: bool = False,
    device: str | torch.device = "cpu",
    autocast_dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Lift a normalised 2D sequence ``(F, J, 2)`` to root-relative 3D ``(F, J, 3)`` (metres).

    Windows are gathered per batch (never all at once: F × T × J × 2 floats can be large).
    ``flip_test`` averages with the prediction on the mirrored input, un-mirrored (x → −x and
    left/right swapped), as in VideoPose3D's test-time augmentation.
    """
    if pose_2d.ndim != 3 or pose_2d.shape[-1] != 2:
        raise ValueError(f"expected (F, J, 2) normalised 2D, got {pose_2d.shape}")
    device = torch.device(device)
    seq = torch.as_tensor(np.ascontiguousarray(pose_2d), dtype=torch.float32, device=device)
    n = len(seq)
    out = np.empty((n, pose_2d.shape[1], 3), dtype=np.float32)
    for start in range(0, n, batch_size):
        idx = window_indices(n, frames, np.arange(start, min(start + batch_size, n)))
        x = seq[torch.as_tensor(idx, device=device)]  # (B, T, J, 2)
        if flip_test:
            x = torch.cat([x, flip_pose(x, skeleton)], dim=0)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            y = _centre_output(lifter(x), frames).float()
        if flip_test:
            half = y.shape[0] // 2
            y = 0.5 * (y[:half] + flip_pose(y[half:], skeleton))
        out[start : start + len(idx)] = y.cpu().numpy()
    return out
