"""Pictures: the 2D skeleton on the frame next to the 3D skeleton (the paper's Fig. 5 layout).

Colours: left limbs blue, right limbs red, centre limbs green (in both panels); with several
people (``--people all``) one colour per track id, with its ``id N`` label. Joints and limbs
come from the ``Skeleton`` objects; matplotlib runs on the Agg canvas (no display needed).
"""

from __future__ import annotations

from typing import Literal

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


# Distinct RGB colours per track id (``--people all``; cycled).
TRACK_COLOURS = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
)  # fmt: skip
View = Literal["side", "camera", "top"]
# (elevation, azimuth) of the 3D panel. Plot axes are (x, z, -y) of the camera frame, so
# "camera" (azimuth -90°, elevation 0°) looks along the camera's own optical axis.
VIEWS: dict[str, tuple[float, float]] = {"side": (15.0, -70.0), "camera": (0.0, -90.0),
                                         "top": (89.0, -90.0)}  # fmt: skip


def track_colour(track_id: int) -> tuple[int, int, int]:
    return TRACK_COLOURS[int(track_id) % len(TRACK_COLOURS)]


def draw_people_2d(
    image: np.ndarray, people: list[tuple[int, np.ndarray | None, np.ndarray | None]],
    skeleton: Skeleton,
) -> np.ndarray:  # fmt: skip
    """Every person ``(track id, keypoints (J, 3) | None, box (5,) | None)`` on a copy of the
    frame, skeleton and box in the track's colour, ``id N`` above the box."""
    out = np.ascontiguousarray(image.copy())
    thick = max(1, round(max(image.shape[:2]) / 300))
    for tid, kp, box in people:
        colour = track_colour(tid)
        if kp is not None and np.isfinite(kp[:, :2]).any():
            ok = np.isfinite(kp[:, :2]).all(1)
            pts = np.round(np.nan_to_num(kp[:, :2])).astype(int)
            for a, b in skeleton.limbs:
                if ok[a] and ok[b]:
                    cv2.line(out, tuple(pts[a]), tuple(pts[b]), colour, thick + 1, cv2.LINE_AA)
        if box is not None and np.isfinite(box[:4]).all():
            x, y, w, h = (int(round(v)) for v in box[:4])
            cv2.rectangle(out, (x, y), (x + w, y + h), colour, thick)
            cv2.putText(out, f"id {tid}", (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.4 * thick + 0.1, colour, thick, cv2.LINE_AA)  # fmt: skip
    return out


class SideBySide:
    """Renders ``[frame with 2D skeletons | 3D skeletons]`` into one RGB image per frame.

    The figure is built once and reused (much faster than a new figure per frame). Axes are
    fixed: :meth:`fit_limits` over the whole clip (else ``radius`` around the origin), so the
    skeleton does not jump with per-frame rescaling; a ground plane is drawn at the lowest foot
    height seen. ``view``: side (default), camera (the input camera's viewpoint) or top.
    """

    def __init__(
        self, skeleton: Skeleton, height: int = 480, radius: float = 1.0, view: View = "side"
    ) -> None:
        self.skeleton = skeleton
        self.height = height
        self.radius = radius
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; use one of {sorted(VIEWS)}")
        self.view = view
        self.colours = [tuple(c / 255 for c in col) for col in limb_colours(skeleton)]
        self.fig = Figure(figsize=(height / 100, height / 100), dpi=100)
        self.canvas = FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_subplot(111, projection="3d")
        r = radius
        self.lo, self.hi = np.array([-r, -r, -r]), np.array([r, r, r])  # camera x, y, z
        self.ground: float | None = None  # camera y of the floor (y points down)

    def fit_limits(self, poses: np.ndarray, margin: float = 0.1) -> None:
        """Fix the axes for the clip: a cube holding every finite joint of ``poses`` ``(..., J,
        3)`` (camera space, offsets applied), and the ground at their largest y (the feet)."""
        p = np.asarray(poses, dtype=np.float64).reshape(-1, 3)
        p = p[np.isfinite(p).all(1)]
        if not len(p):
            return
        lo, hi = p.min(0), p.max(0)
        centre, half = (lo + hi) / 2, max((hi - lo).max() / 2 * (1 + margin), 0.5)
        self.lo, self.hi = centre - half, centre + half
        self.ground = float(hi[1])

    def _ground_plane(self) -> None:
        x = np.linspace(self.lo[0], self.hi[0], 6)
        z = np.linspace(self.lo[2], self.hi[2], 6)
        # One line artist for the whole grid (NaN breaks the segments): cheaper to draw.
        xs = [c for v in x for c in (v, v, np.nan)] + [c for _ in z for c in (x[0], x[-1], np.nan)]
        zs = [c for _ in x for c in (z[0], z[-1], np.nan)] + [c for v in z for c in (v, v, np.nan)]
        self.ax.plot(xs, zs, np.full(len(xs), -self.ground), c=(0.55, 0.55, 0.55), lw=0.8)

    def plot_3d(
        self, pose: np.ndarray | list | None, title: str = "", ids: list[int] | None = None
    ) -> np.ndarray:
        """Camera-space ``(J, 3)`` (x right, y down, z forward), or a list of them (one per
        person, coloured by ``ids``) → ``(S, S, 3)`` RGB uint8. Poses are drawn where they are:
        without :meth:`fit_limits` a single pose is centred on its root."""
        ax = self.ax
        ax.cla()
        ax.view_init(elev=VIEWS[self.view][0], azim=VIEWS[self.view][1])
        # Plot (x, z, -y): depth goes into the screen and "up" is up.
        ax.set_xlim(self.lo[0], self.hi[0])
        ax.set_ylim(self.lo[2], self.hi[2])
        ax.set_zlim(-self.hi[1], -self.lo[1])
        ax.set_xticklabels([])
        ax.set_yticklabels([])
        ax.set_zticklabels([])
        ax.set_title(title, fontsize=9)
        ax.grid(self.ground is None)  # with a ground plane, the floor grid is the reference
        if self.ground is not None:
            self._ground_plane()
        poses = pose if isinstance(pose, list) else [pose]
        for k, p in enumerate(poses):
            if p is None or not np.isfinite(p).all():
                continue
            if self.ground is None and not isinstance(pose, list):
                p = p - p[self.skeleton.root]
            single = ids is None
            colour = None if single else tuple(c / 255 for c in track_colour(ids[k]))
            for (a, b), c in zip(self.skeleton.limbs, self.colours, strict=True):
                ax.plot([p[a, 0], p[b, 0]], [p[a, 2], p[b, 2]], [-p[a, 1], -p[b, 1]],
                        c=c if single else colour, lw=2)  # fmt: skip
            if not single:
                top = p[int(np.argmin(p[:, 1]))]
                ax.text(top[0], top[2], -top[1] + 0.1, f"id {ids[k]}", color=colour, fontsize=8)
        self.canvas.draw()
        return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()

    def _compose(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        h, w = left.shape[:2]
        left = cv2.resize(left, (max(1, round(w * self.height / h)), self.height))
        if right.shape[0] != self.height:
            right = cv2.resize(right, (self.height, self.height))
        return np.concatenate([left, right], axis=1)

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
        return self._compose(left, self.plot_3d(pose_3d, title))

    def people(
        self,
        image: np.ndarray,
        people: list[tuple[int, np.ndarray | None, np.ndarray | None, np.ndarray | None]],
        skeleton_2d: Skeleton,
        title: str = "",
    ) -> np.ndarray:
        """Every person ``(track id, 2D (J2, 3) | None, box (5,) | None, 3D (J, 3) | None)``:
        2D skeletons and boxes on the frame, all 3D skeletons in one panel, colours by id."""
        left = draw_people_2d(image, [(t, k, b) for t, k, b, _ in people], skeleton_2d)
        shown = [(t, p) for t, _, _, p in people if p is not None and np.isfinite(p).all()]
        right = self.plot_3d([p for _, p in shown], title, ids=[t for t, _ in shown])
        return self._compose(left, right)
