"""Main-person association over time from per-frame person boxes.

Choice (documented in docs/system.md): in the first frame with any box, the main person is the
box with the largest ``area × score``; every later frame takes the box with the highest IoU with
the last tracked box when that IoU reaches ``iou_threshold``. A frame with no such box is
*missing*. After ``max_lost`` consecutive missing frames the track is re-acquired with the
first-frame rule (the person left and someone, or they, came back elsewhere).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def box_iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between boxes ``a`` (N, 4) and ``b`` (M, 4) in ``(x, y, w, h)`` → ``(N, M)``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def pick_main(boxes: np.ndarray) -> int:
    """Index of the main person among ``(N, 5)`` boxes ``(x, y, w, h, score)``: max area × score."""
    return int(np.argmax(boxes[:, 2] * boxes[:, 3] * boxes[:, 4]))


class MainPersonTracker:
    """Incremental form of :func:`track_main_person` (one ``update`` per frame, streaming)."""

    def __init__(self, iou_threshold: float = 0.3, max_lost: int = 10) -> None:
        self.iou_threshold = iou_threshold
        self.max_lost = max_lost
        self.last: np.ndarray | None = None
        self.lost = 0

    def update(self, boxes: np.ndarray) -> int:
        """``(N, 5)`` boxes of the next frame → index of the main person, or ``-1`` (missing)."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
        if len(boxes) == 0:
            self.lost += 1
            return -1
        if self.last is None or self.lost > self.max_lost:
            k = pick_main(boxes)
        else:
            iou = box_iou_xywh(self.last[None], boxes[:, :4])[0]
            k = int(np.argmax(iou))
            if iou[k] < self.iou_threshold:
                self.lost += 1
                return -1
        self.last, self.lost = boxes[k, :4], 0
        return k


def track_main_person(
    boxes_per_frame: Sequence[np.ndarray], iou_threshold: float = 0.3, max_lost: int = 10
) -> np.ndarray:
    """Choose one box per frame: ``(F,)`` int64 index into that frame's boxes, ``-1`` = missing.

    ``boxes_per_frame[f]``: ``(N_f, 5)`` boxes ``(x, y, w, h, score)`` (``N_f`` may be 0).
    """
    tracker = MainPersonTracker(iou_threshold, max_lost)
    return np.array([tracker.update(b) for b in boxes_per_frame], dtype=np.int64)
