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


class MultiPersonTracker:
    """Every person, each with a persistent id: one ``update`` per frame.

    Choice (docs/system.md): a live track predicts its box as its last box moved by its
    velocity (an exponential average, ``momentum``, of the per-frame displacement of the box
    centre) times the frames since it was last seen. Similarity of a track and a detection is
    the IoU of the predicted and detected boxes; with keypoints on both sides it is the mean of
    that IoU and the OKS of the keypoints (the track's last keypoints moved by the same shift,
    normalised by the box areas). Detections are assigned to tracks by the Hungarian method on
    the similarities (``scipy.optimize.linear_sum_assignment``), and a pair counts only if its
    similarity reaches ``min_similarity``. An unmatched detection with score ≥
    ``new_track_score`` starts a track with the next id; a track unmatched for more than
    ``max_gap`` consecutive frames ends, and its id is never reused.
    """

    def __init__(
        self,
        min_similarity: float = 0.2,
        max_gap: int = 10,
        new_track_score: float = 0.0,
        momentum: float = 0.5,
        use_oks: bool = True,
    ) -> None:
        self.min_similarity, self.max_gap = min_similarity, max_gap
        self.new_track_score, self.momentum, self.use_oks = new_track_score, momentum, use_oks
        self.tracks: dict[int, dict] = {}
        self.next_id = 0
        self.frame = -1

    def _predicted(self) -> tuple[list[int], np.ndarray, np.ndarray]:
        ids = list(self.tracks)
        shifts = np.array(
            [self.tracks[i]["vel"] * (self.frame - self.tracks[i]["seen"]) for i in ids]
        ).reshape(-1, 2)
        boxes = np.array([self.tracks[i]["box"] for i in ids]).reshape(-1, 4).copy()
        boxes[:, :2] += shifts
        return ids, boxes, shifts

    def _similarity(
        self, boxes: np.ndarray, keypoints: np.ndarray | None
    ) -> tuple[list[int], np.ndarray]:
        ids, pred, shifts = self._predicted()
        sim = box_iou_xywh(pred, boxes[:, :4])
        if self.use_oks and keypoints is not None and ids:
            from pose2d.oks import pairwise_oks

            for r, i in enumerate(ids):
                kp = self.tracks[i]["kpts"]
                if kp is None:
                    continue
                moved = kp.copy()
                moved[:, :2] += shifts[r]
                area = max(self.tracks[i]["box"][2] * self.tracks[i]["box"][3], 1.0)
                oks = pairwise_oks(
                    moved[None], np.array([area]), other=keypoints,
                    other_areas=np.maximum(boxes[:, 2] * boxes[:, 3], 1.0), in_vis_thresh=0.2,
                )[0]  # fmt: skip
                sim[r] = 0.5 * (sim[r] + np.nan_to_num(oks))
        return ids, sim

    def update(self, boxes: np.ndarray, keypoints: np.ndarray | None = None) -> np.ndarray:
        """Next frame's ``(N, 5)`` boxes (``x, y, w, h, score``) and optional ``(N, J, 3)``
        keypoints → ``(N,)`` int64 track ids (``-1``: not tracked, score too low)."""
        from scipy.optimize import linear_sum_assignment

        self.frame += 1
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
        ids_out = np.full(len(boxes), -1, dtype=np.int64)
        for i in [i for i, t in self.tracks.items() if self.frame - t["seen"] > self.max_gap + 1]:
            del self.tracks[i]
        if len(boxes) and self.tracks:
            ids, sim = self._similarity(boxes, keypoints)
            rows, cols = linear_sum_assignment(-sim)
            for r, c in zip(rows, cols, strict=True):
                if sim[r, c] >= self.min_similarity:
                    ids_out[c] = ids[r]
        for c in np.flatnonzero(ids_out < 0):
            if boxes[c, 4] >= self.new_track_score:
                ids_out[c] = self.next_id
                self.tracks[self.next_id] = {
                    "box": boxes[c, :4],
                    "vel": np.zeros(2),
                    "seen": self.frame,
                    "kpts": None,
                    "new": True,
                }
                self.next_id += 1
        for c, i in enumerate(ids_out):
            if i < 0:
                continue
            t = self.tracks[int(i)]
            if not t.pop("new", False):
                dt = max(self.frame - t["seen"], 1)
                centre = lambda b: b[:2] + b[2:4] / 2  # noqa: E731
                step = (centre(boxes[c, :4]) - centre(t["box"])) / dt
                t["vel"] = self.momentum * t["vel"] + (1 - self.momentum) * step
            t["box"], t["seen"] = boxes[c, :4], self.frame
            t["kpts"] = None if keypoints is None else np.asarray(keypoints[c], dtype=np.float64)
        return ids_out


def track_all_people(
    boxes_per_frame: Sequence[np.ndarray],
    keypoints_per_frame: Sequence[np.ndarray] | None = None,
    **kwargs,
) -> list[np.ndarray]:
    """Track ids per frame, ``(N_f,)`` int64 each, with :class:`MultiPersonTracker` (``kwargs``)."""
    tracker = MultiPersonTracker(**kwargs)
    kps = keypoints_per_frame if keypoints_per_frame is not None else [None] * len(boxes_per_frame)
    return [tracker.update(b, k) for b, k in zip(boxes_per_frame, kps, strict=True)]
