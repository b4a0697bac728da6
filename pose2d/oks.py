"""Object Keypoint Similarity, OKS-NMS and the top-down rescoring (pure numpy).

Conventions follow the official HRNet evaluation (``lib/nms/nms.py``, ``coco.py evaluate``):

- OKS between two poses: ``mean_j exp(-d_j² / (2 · s² · (2σ_j)²))`` with ``s²`` the mean of the
  two areas (NMS) or the ground-truth area (COCOeval, :func:`coco_oks`).
- Rescoring: ``score = box_score × mean(joint scores > in_vis_thresh)`` (0 if none pass).
- OKS-NMS: greedy by score; a pose is dropped when its OKS with a kept one is ``> thresh``.
"""

from __future__ import annotations

import numpy as np

from datamodules.skeleton import COCO_OKS_SIGMAS

_EPS = np.spacing(1)


def pairwise_oks(
    kpts: np.ndarray,
    areas: np.ndarray,
    sigmas: np.ndarray = COCO_OKS_SIGMAS,
    other: np.ndarray | None = None,
    other_areas: np.ndarray | None = None,
    in_vis_thresh: float | None = None,
) -> np.ndarray:
    """OKS of every pose in ``kpts (N, J, ≥2)`` against every pose in ``other (M, J, ≥2)``.

    ``areas (N,)`` / ``other_areas (M,)`` in px²; the normaliser is their mean (official NMS).
    ``other=None`` compares ``kpts`` with itself. With ``in_vis_thresh``, only joints whose
    score (channel 2) exceeds it in *both* poses count (0 when none do).
    Returns ``(N, M)`` float64.
    """
    a = np.asarray(kpts, dtype=np.float64)
    b = a if other is None else np.asarray(other, dtype=np.float64)
    area_a = np.asarray(areas, dtype=np.float64)
    area_b = area_a if other is None else np.asarray(other_areas, dtype=np.float64)
    var = (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2  # (J,)
    d2 = ((a[:, None, :, :2] - b[None, :, :, :2]) ** 2).sum(-1)  # (N, M, J)
    s2 = (area_a[:, None] + area_b[None, :]) / 2.0 + _EPS  # (N, M)
    sim = np.exp(-d2 / var / s2[..., None] / 2.0)
    if in_vis_thresh is None:
        return sim.mean(-1)
    mask = (a[:, None, :, 2] > in_vis_thresh) & (b[None, :, :, 2] > in_vis_thresh)
    n = mask.sum(-1)
    return np.where(n > 0, (sim * mask).sum(-1) / np.maximum(n, 1), 0.0)


def coco_oks(
    gt: np.ndarray,
    dt: np.ndarray,
    area: float,
    sigmas: np.ndarray = COCO_OKS_SIGMAS,
) -> float:
    """OKS as COCOeval scores it: ``gt (J, 3)`` with visibility, ``dt (J, ≥2)``, GT ``area``.

    Averaged over the labelled GT joints (v > 0); ``s²`` is the GT area (no averaging).
    """
    gt = np.asarray(gt, dtype=np.float64)
    dt = np.asarray(dt, dtype=np.float64)
    var = (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2
    vis = gt[:, 2] > 0
    if not vis.any():
        raise ValueError("coco_oks needs at least one labelled ground-truth joint")
    d2 = ((gt[:, :2] - dt[:, :2]) ** 2).sum(-1)
    e = d2 / var / (area + _EPS) / 2.0
    return float(np.exp(-e[vis]).mean())


def rescore(
    keypoint_scores: np.ndarray, box_scores: np.ndarray, in_vis_thresh: float = 0.2
) -> np.ndarray:
    """Official top-down instance score: box score × mean of the joint scores ``> in_vis_thresh``.

    ``keypoint_scores (N, J)``, ``box_scores (N,)`` → ``(N,)``; 0 when no joint passes.
    """
    s = np.asarray(keypoint_scores, dtype=np.float64)
    valid = s > in_vis_thresh
    n = valid.sum(-1)
    kpt = np.where(n > 0, (s * valid).sum(-1) / np.maximum(n, 1), 0.0)
    return kpt * np.asarray(box_scores, dtype=np.float64)


def oks_nms(
    kpts: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    thresh: float = 0.9,
    sigmas: np.ndarray = COCO_OKS_SIGMAS,
    in_vis_thresh: float | None = None,
) -> np.ndarray:
    """Greedy OKS-NMS within one image.

    ``kpts (N, J, ≥2)``, ``scores (N,)``, ``areas (N,)`` → indices kept, highest score first.
    A candidate is suppressed when its OKS with an already kept pose is ``> thresh``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    ovr = pairwise_oks(np.asarray(kpts)[order], np.asarray(areas)[order], sigmas,
                       in_vis_thresh=in_vis_thresh)  # fmt: skip
    alive = np.ones(n, dtype=bool)
    keep = []
    for i in range(n):  # greedy; the O(N²) similarities are precomputed in one shot
        if not alive[i]:
            continue
        keep.append(i)
        alive[i + 1 :] &= ovr[i, i + 1 :] <= thresh
    return order[np.asarray(keep, dtype=np.int64)]
