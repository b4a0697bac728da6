"""COCO keypoint AP/AR as a DDP-safe torchmetrics Metric (official top-down protocol).

``compute()`` de-duplicates the samples DistributedSampler repeats, rescores each instance
(box score × mean confident joint score), applies OKS-NMS per image, writes the COCO results
list and runs COCOeval (``iouType="keypoints"``, sigmas from ``skeleton.COCO_OKS_SIGMAS``).
Every rank runs the same evaluation on the gathered predictions and gets the same numbers.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from datamodules.skeleton import COCO_OKS_SIGMAS
from pose2d.oks import oks_nms, rescore

STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
MetricBackend = Literal["pycocotools", "faster_coco_eval"]
BACKENDS: tuple[str, ...] = get_args(MetricBackend)


def _cat(x: Tensor | list[Tensor]) -> Tensor:
    if isinstance(x, Tensor):
        return x
    return torch.cat(x) if x else torch.empty(0)


def first_occurrence(index: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each distinct ``index`` value (sorted by value)."""
    _, first = np.unique(index, return_index=True)
    return first


def build_results(
    image_id: np.ndarray,
    keypoints: np.ndarray,
    box_score: np.ndarray,
    area: np.ndarray,
    use_nms: bool = True,
    oks_nms_thresh: float = 0.9,
    in_vis_thresh: float = 0.2,
    sigmas: np.ndarray = COCO_OKS_SIGMAS,
) -> list[dict]:
    """Rescore + OKS-NMS per image → COCO results list.

    ``image_id (N,)``, ``keypoints (N, J, 3)`` image px + joint score, ``box_score (N,)``,
    ``area (N,)`` (box area in px², the OKS-NMS normaliser). Each result is
    ``{"image_id", "category_id": 1, "keypoints": [x, y, s] * J, "score"}``.
    """
    n = int(image_id.shape[0])
    if n == 0:
        return []
    kpts = np.asarray(keypoints, dtype=np.float64)
    scores = rescore(kpts[..., 2], box_score, in_vis_thresh)
    order = np.argsort(image_id, kind="stable")
    ids_sorted = image_id[order]
    starts = np.flatnonzero(np.r_[True, ids_sorted[1:] != ids_sorted[:-1]])
    groups = np.split(order, starts[1:])
    if use_nms:
        kept = [g[oks_nms(kpts[g], scores[g], area[g], oks_nms_thresh, sigmas)] for g in groups]
        sel = np.concatenate(kept)
    else:
        sel = order
    flat = kpts[sel].reshape(len(sel), -1).round(4)
    return [
        {"image_id": int(i), "category_id": 1, "keypoints": k.tolist(), "score": float(s)}
        for i, k, s in zip(image_id[sel], flat, scores[sel], strict=True)
    ]


def save_results(results: list[dict], path: str | os.PathLike) -> Path:
    """Write a COCO keypoint results list as JSON (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results))
    return path


def _load_gt(ann_file: str, backend: str):
    if not Path(ann_file).is_file():
        raise FileNotFoundError(
            f"COCO keypoint annotation file not found: {ann_file} (expected e.g. "
            "<coco root>/annotations/person_keypoints_val2017.json)"
        )
    with contextlib.redirect_stdout(io.StringIO()):
        if backend == "faster_coco_eval":
            from faster_coco_eval import COCO
        else:
            from pycocotools.coco import COCO
        try:
            return COCO(ann_file)
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"corrupt COCO annotation file {ann_file}: {err}") from err


def evaluate_keypoints(
    coco_gt, results: list[dict], backend: str = "pycocotools", sigmas=COCO_OKS_SIGMAS
) -> dict[str, float]:
    """Run COCOeval(iouType="keypoints") quietly → the 10 stats keyed by ``STAT_NAMES``."""
    if not results:
        warnings.warn("COCOKeypointMetric: no predictions to evaluate; reporting zeros",
                      stacklevel=2)  # fmt: skip
        return dict.fromkeys(STAT_NAMES, 0.0)
    known = set(coco_gt.getImgIds())
    unknown = {r["image_id"] for r in results} - known
    if unknown:
        raise ValueError(
            f"{len(unknown)} predicted image ids are not in the annotation file, e.g. "
            f"{sorted(unknown)[:5]}; is ann_file the right split?"
        )
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes([dict(r) for r in results])  # loadRes adds keys in place
        if backend == "faster_coco_eval":
            from faster_coco_eval import COCOeval_faster

            ev = COCOeval_faster(coco_gt, coco_dt, iouType="keypoints",
                                 kpt_oks_sigmas=list(np.asarray(sigmas, dtype=float)))  # fmt: skip
        else:
            from pycocotools.cocoeval import COCOeval

            ev = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = np.asarray(ev.stats, dtype=np.float64)[: len(STAT_NAMES)]
    return {k: float(v) for k, v in zip(STAT_NAMES, stats, strict=True)}


class COCOKeypointMetric(Metric):
    """COCO keypoint AP/AR of top-down predictions.

    ``update(index (N,), image_id (N,), keypoints (N, 17, 3) image px + score, box_score (N,),
    area (N,))``; ``compute()`` → ``{"AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75",
    "ARm", "ARl"}`` as floats in [0, 1] (-1 where COCOeval has no ground truth in a range).
    After ``compute()``, ``results`` holds the COCO results list; ``save(path)`` writes it.
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(
        self,
        ann_file: str,
        use_nms: bool = True,
        oks_nms_thresh: float = 0.9,
        in_vis_thresh: float = 0.2,
        backend: str = "pycocotools",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.ann_file = str(ann_file)
        self.use_nms = bool(use_nms)
        self.oks_nms_thresh = float(oks_nms_thresh)
        self.in_vis_thresh = float(in_vis_thresh)
        self.backend = backend
        self._coco_gt = None
        self.results: list[dict] = []
        self.skipped_samples = np.zeros(0, dtype=np.int64)
        for name in ("index", "image_id", "keypoints", "box_score", "area", "unreadable"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    @property
    def coco_gt(self):
        """The ground truth, loaded once on first use."""
        if self._coco_gt is None:
            self._coco_gt = _load_gt(self.ann_file, self.backend)
        return self._coco_gt

    def update(
        self,
        index: Tensor,
        image_id: Tensor,
        keypoints: Tensor,
        box_score: Tensor,
        area: Tensor,
        unreadable: Tensor | None = None,
    ) -> None:
        """``unreadable (N,)``: for each sample, the dataset index it stands in for when that
        one's image could not be read (-1 otherwise): those persons are not scored."""
        if keypoints.dim() != 3 or keypoints.shape[-1] != 3:
            raise ValueError(f"keypoints must be (N, J, 3), got {tuple(keypoints.shape)}")
        if unreadable is not None:
            unreadable = unreadable.detach().long().reshape(-1)
            self.unreadable.append(unreadable[unreadable >= 0])
        self.index.append(index.detach().long().reshape(-1))
        self.image_id.append(image_id.detach().long().reshape(-1))
        self.keypoints.append(keypoints.detach().float())
        self.box_score.append(box_score.detach().float().reshape(-1))
        self.area.append(area.detach().float().reshape(-1))

    def gathered(self) -> dict[str, np.ndarray]:
        """States as numpy, de-duplicated by ``index`` (sorted by index)."""
        index = _cat(self.index).cpu().numpy()
        keep = first_occurrence(index)
        out = {"index": index[keep]}
        for name in ("image_id", "keypoints", "box_score", "area"):
            out[name] = _cat(getattr(self, name)).cpu().numpy()[keep]
        return out

    def compute(self) -> dict[str, float]:
        """The COCO stats; also sets :attr:`skipped_samples` (distinct dataset indices whose
        image was unreadable, so the evaluation is partial when it is not empty)."""
        s = self.gathered()
        self.skipped_samples = np.unique(_cat(self.unreadable).cpu().numpy().astype(np.int64))
        self.results = build_results(
            s["image_id"], s["keypoints"], s["box_score"], s["area"],
            use_nms=self.use_nms, oks_nms_thresh=self.oks_nms_thresh,
            in_vis_thresh=self.in_vis_thresh,
        )  # fmt: skip
        return evaluate_keypoints(self.coco_gt, self.results, self.backend)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the results of the last ``compute()`` as COCO results JSON."""
        return save_results(self.results, path)
