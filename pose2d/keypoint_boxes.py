"""Zero-install fallback box source: each frame's box is the previous frame's keypoints' box.

For a small person in a large frame the full frame is a poor crop (the person covers a few
pixels of the network's input). This source starts from the full frame, and once the detector
has found the person (at least ``min_joints`` joints with score ≥ ``min_score``) it crops the
next frame around the keypoints just found (their extent, widened by ``margin`` on each side).
On the first frame, and on every frame after the person was lost, the found box is used again
on the same frame (``refine``: a zoom-in pass), so the first frame gets a tight crop too. When
the keypoints become unreliable it falls back to the full frame. One person only; it needs no
weights and no extra package (the 2D stage feeds the keypoints back through :meth:`observe`).
"""

from __future__ import annotations

import numpy as np


def keypoints_box(
    keypoints: np.ndarray,
    frame_wh: tuple[int, int],
    min_score: float = 0.3,
    min_joints: int = 5,
    margin: float = 0.2,
) -> np.ndarray | None:
    """``(J, 3)`` keypoints (px + score) → ``(5,)`` box ``x, y, w, h, score`` around the joints
    with score ≥ ``min_score`` (``margin`` × the extent added on each side, clipped to the
    frame; score = their mean score), or ``None`` with fewer than ``min_joints`` such joints."""
    kp = np.asarray(keypoints, dtype=np.float64)
    ok = np.isfinite(kp).all(1) & (kp[:, 2] >= min_score)
    if ok.sum() < min_joints:
        return None
    lo, hi = kp[ok, :2].min(0), kp[ok, :2].max(0)
    pad = margin * np.maximum(hi - lo, 1.0).max()
    w, h = frame_wh
    lo = np.clip(lo - pad, 0, [w, h])
    hi = np.clip(hi + pad, 0, [w, h])
    if (hi - lo).min() < 2:
        return None
    return np.array([*lo, *(hi - lo), kp[ok, 2].mean()], dtype=np.float32)


class KeypointBoxes:
    """Box source ``(index, name, image) -> (1, 5)`` that follows the person's keypoints.

    Args:
        min_score: a joint counts as found at or above this score.
        min_joints: joints that must be found to use the keypoints' box.
        margin: added on each side, as a fraction of the keypoints' larger extent.
        refine: when the person is (re)found, crop the same frame again around the keypoints.
    """

    needs_feedback = True

    def __init__(
        self, min_score: float = 0.3, min_joints: int = 5, margin: float = 0.2, refine: bool = True
    ) -> None:
        self.min_score, self.min_joints, self.margin = min_score, min_joints, margin
        self.refine = refine
        self.last: np.ndarray | None = None

    def describe(self) -> str:
        return "track (previous frame's keypoint box; full frame to start)"

    def __call__(self, index: int, name: str, image: np.ndarray) -> np.ndarray:
        if self.last is not None:
            return self.last[None].copy()
        h, w = image.shape[:2]
        return np.array([[0.0, 0.0, w, h, 1.0]], dtype=np.float32)

    def observe(self, index: int, image: np.ndarray, keypoints: np.ndarray) -> np.ndarray | None:
        """The 2D result ``(N, J, 3)`` for the boxes given for frame ``index`` → boxes to run
        again on the same frame (the zoom-in pass), or ``None``."""
        h, w = image.shape[:2]
        was_lost = self.last is None
        box = None
        if len(keypoints):
            box = keypoints_box(keypoints[0], (w, h), self.min_score, self.min_joints, self.margin)
        self.last = box
        if box is not None and was_lost and self.refine:
            return box[None].copy()
        return None
