"""Frame-rate matching: lift a 2D sequence at the rate the lifter was trained at.

A lifter sees a fixed number of frames T; trained on Human3.6M (50 fps) its window spans
T / 50 s. Fed a 25 fps video frame by frame, the same window spans twice the time and the
motion looks twice as fast. :func:`lift_at_rate` resamples the 2D sequence to the lifter's rate
by linear interpolation in time, lifts it there, and interpolates the 3D back to the video's
frames. Pure numpy on the time axis; the lifting is :func:`pose3d.windows_infer.lift_sequence`.
"""

from __future__ import annotations

import numpy as np

from pose3d.windows_infer import lift_sequence


def resample_positions(num_frames: int, src_fps: float, dst_fps: float) -> np.ndarray:
    """Positions (in source frames, float) of the frames of the same clip at ``dst_fps``:
    ``j · src_fps / dst_fps`` for every ``j`` that stays within ``[0, num_frames − 1]``."""
    if num_frames < 1 or src_fps <= 0 or dst_fps <= 0:
        raise ValueError(f"cannot resample {num_frames} frames from {src_fps} to {dst_fps} fps")
    step = src_fps / dst_fps
    count = int(np.floor((num_frames - 1) / step + 1e-9)) + 1
    return np.arange(count) * step


def interpolate_frames(x: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``(F, ...)`` sampled at frames ``0..F-1`` → ``(M, ...)`` at float ``positions``
    (linear between neighbours, clamped at the ends)."""
    x = np.asarray(x)
    pos = np.clip(np.asarray(positions, dtype=np.float64), 0, len(x) - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(x) - 1)
    w = (pos - lo).reshape(-1, *([1] * (x.ndim - 1)))
    return ((1 - w) * x[lo] + w * x[hi]).astype(x.dtype)


def lift_at_rate(
    lifter, pose_2d: np.ndarray, frames: int, skeleton, src_fps: float | None,
    lifter_fps: float | None, resample: bool = True, **lift_kwargs,
) -> np.ndarray:  # fmt: skip
    """Normalised 2D ``(F, J, 2)`` at ``src_fps`` → 3D ``(F, J, 3)``, lifted at ``lifter_fps``.

    Without ``resample``, or when either rate is unknown or they agree within 1 %, this is
    :func:`lift_sequence` on the frames as they are (``lift_kwargs`` go to it).
    """
    same = not src_fps or not lifter_fps or abs(src_fps / lifter_fps - 1) < 0.01
    if not resample or same:
        return lift_sequence(lifter, pose_2d, frames, skeleton, **lift_kwargs)
    pos = resample_positions(len(pose_2d), src_fps, lifter_fps)
    at_rate = interpolate_frames(pose_2d, pos)
    out = lift_sequence(lifter, at_rate, frames, skeleton, **lift_kwargs)
    # Back to the video's frames: frame i sits at i · lifter_fps / src_fps on the lifter's grid.
    back = np.arange(len(pose_2d)) * (lifter_fps / src_fps)
    return interpolate_frames(out, back)


# A checkpoint from before the frame rate was recorded: the lifters were trained on Human3.6M.
DEFAULT_LIFTER_FPS = 50.0


def lifter_frame_rate(path) -> float | None:
    """The frame rate a lifter checkpoint was trained at (its ``frame_rate`` entry, written by
    ``LiftingModule.on_save_checkpoint``); 50 (Human3.6M) for a checkpoint without the entry,
    ``None`` when training recorded it as unknown (mixed-rate data such as MPI-INF-3DHP)."""
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if "frame_rate" not in ckpt:
        return DEFAULT_LIFTER_FPS
    rate = ckpt["frame_rate"]
    return None if rate is None else float(rate)
