"""Pictures: the 2D skeleton on the frame next to the 3D skeleton (the paper's Fig. 5 layout).

Colours: left limbs blue, right limbs red, centre limbs green (in both panels). Joints and limbs
come from the ``Skeleton`` objects; matplotlib runs on the Agg canvas (no display needed).
"""

from __future__ import annotations

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from datamodules.skeleton import Skeleton

LEFT, RIGHT, CENTRE = (40, 110, 255), (235, 50, 50), (40, 190, 60)  # RGB


def limb_colours(skeleton: Skeleton) -> list[tuple[int, int, int]]:
    """One RGB colour per limb: left if either end is a left joint, right likewise, else centre."""
    left, right = set(skeleton.left), set(skeleton.right)
    out = []
    for a, b in skeleton.limbs:
        out.append(LEFT if {a, b} & left else RIGHT if {a, b} & right else CENTRE)
    return out


def draw_skeleton_2d(
    image: np.ndarray, keypoints: np.ndarray, skeleton: Skeleton, min_score: float = 0.0
) -> np.ndarray:
    """Draw ``keypoints`` ``(J, 2|3)`` (pixels [+ score]) on a copy of ``image`` ``(H, W, 3)``.

    Joints with score < ``min_score`` or non-finite coordinates are not drawn.
    """
    out = np.ascontiguousarray(image.copy())
    if keypoints is None or not np.isfinite(keypoints[:, :2]).any():
        return out
    score = keypoints[:, 2] if keypoints.shape[1] > 2 else np.ones(len(keypoints))
    ok = np.isfinite(keypoints[:, :2]).all(1) & (score >= min_score)
    thick = max(1, round(max(image.shape[:2]) / 200))
    pts = np.round(np.nan_to_num(keypoints[:, :2])).astype(int)
    for (a, b), colour in zip(skeleton.limbs, limb_colours(skeleton), strict=True):
        if ok[a] and ok[b]:
            cv2.line(out, tuple(pts[a]), tuple(pts[b]), colour, thick, cv2.LINE_AA)
    for j in np.flatnonzero(ok):
        cv2.circle(out, tuple(pts[j]), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)
    return out


class SideBySide:
    """Renders ``[frame with 2D skeleton | 3D skeleton]`` into one RGB image per frame.

    The figure is built once and reused (much faster than a new figure per frame).
    ``radius``: half the side of the 3D box in metres around the root joint.
    """

    def __init__(self, skeleton: Skeleton, height: int = 480, radius: float = 1.0) -> None:
        self.skeleton = skeleton
        self.height = height
        self.radius = radius
        self.colours = [tuple(c / 255 for c in col) for col in limb_colours(skeleton)]
        self.fig = Figure(figsize=(height / 100, height / 100), dpi=100)
        self.canvas = FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_subplot(111, projection="3d")

    def plot_3d(self, pose: np.ndarray, title: str = "") -> np.ndarray:
        """Camera-space ``(J, 3)`` (x right, y down, z forward) → ``(S, S, 3)`` RGB uint8."""
        ax, r = self.ax, self.radius
        ax.cla()
        ax.view_init(elev=15.0, azim=-70.0)
        ax.set_xlim(-r, r)
        ax.set_ylim(-r, r)
        ax.set_zlim(-r, r)
        ax.set_xticklabels([])
        ax.set_yticklabels([])
        ax.set_zticklabels([])
        ax.set_title(title, fontsize=9)
        if pose is not None and np.isfinite(pose).all():
            p = pose - pose[self.skeleton.root]
            # Plot (x, z, -y): depth goes into the screen and "up" is up.
            for (a, b), c in zip(self.skeleton.limbs, self.colours, strict=True):
                ax.plot([p[a, 0], p[b, 0]], [p[a, 2], p[b, 2]], [-p[a, 1], -p[b, 1]], c=c, lw=2)
        self.canvas.draw()
        return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()

    def __call__(
        self,
        image: np.ndarray,
        keypoints_2d: np.ndarray | None,
        skeleton_2d: Skeleton,
        pose_3d: np.ndarray | None,
        title: str = "",
    ) -> np.ndarray:
        """``(H, W, 3)`` frame + ``(J2, 3)`` 2D + ``(J, 3)`` 3D → ``(height, W', 3)`` RGB uint8."""
        left = (
            draw_skeleton_2d(image, keypoints_2d, skeleton_2d)
            if keypoints_2d is not None
            else image
        )
        h, w = left.shape[:2]
        left = cv2.resize(left, (max(1, round(w * self.height / h)), self.height))
        right = self.plot_3d(pose_3d, title)
        if right.shape[0] != self.height:
            right = cv2.resize(right, (self.height, self.height))
        return np.concatenate([left, right], axis=1)
