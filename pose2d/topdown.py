"""Batched top-down 2D inference: person boxes → crops (affine warp) → HRNet → decode → image px.

:func:`estimate_2d` streams a frame sequence (``datamodules.frames``) through a box source and
the main-person tracker; both the 3D pipeline (``pose3d.infer``) and the keypoint export use it.

Crops follow the training geometry (``pose2d.transforms``): box → (centre, scale) with the
official 1.25 padding and the network aspect ratio, warped with the official affine (or UDP when
``decode="udp"``). Optional flip test averages with the mirrored crop's heatmaps (flipped back,
left/right swapped, one-pixel shift for the standard codec).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from callbacks.user_error import BadInputError
from datamodules.coco_transforms import IMAGENET_MEAN, IMAGENET_STD
from datamodules.skeleton import COCO, Skeleton
from pose2d.boxes import BoxSource
from pose2d.heatmaps import decode_heatmaps, flip_back, heatmap_size_for
from pose2d.tracking import MainPersonTracker
from pose2d.transforms import (
    PADDING,
    box_to_center_scale,
    crop_to_image,
    get_affine_transform,
    get_udp_transform,
)


def make_crops(
    images: list[np.ndarray],
    boxes_xywh: np.ndarray,
    input_size_wh: tuple[int, int] = (192, 256),
    use_udp: bool = False,
    padding: float = PADDING,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One crop per (image, box): ``(N, 3, H, W)`` float32 normalised, centres, scales ``(N, 2)``.

    ``images``: N RGB uint8 ``(h_i, w_i, 3)`` (the same image may repeat); ``boxes_xywh`` (N, 4).
    """
    w, h = input_size_wh
    centers, scales = box_to_center_scale(
        np.asarray(boxes_xywh, dtype=np.float64), aspect_ratio=w / h, padding=padding
    )
    crops = np.empty((len(images), h, w, 3), dtype=np.uint8)
    warp = get_udp_transform if use_udp else get_affine_transform
    for i, image in enumerate(images):  # one cv2 call per crop: the warp itself is C code
        m = warp(centers[i], scales[i], 0.0, (w, h))
        crops[i] = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR)
    x = (crops.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD  # as in training
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), centers, scales


class TopDownEstimator:
    """Wraps a heatmap network ``(B, 3, H, W) → (B, J, H/4, W/4)`` for inference on boxes.

    ``autocast_dtype`` (e.g. ``torch.bfloat16`` on CUDA) runs the network under autocast;
    decoding is always float32. ``batch_size`` bounds the crops per forward pass.
    """

    def __init__(
        self,
        model: nn.Module,
        input_size_wh: tuple[int, int] = (192, 256),
        flip_test: bool = True,
        decode: str = "standard",
        skeleton: Skeleton = COCO,
        device: str | torch.device = "cpu",
        batch_size: int = 32,
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.input_size = tuple(input_size_wh)
        self.heatmap_size = heatmap_size_for(self.input_size)
        self.flip_test, self.decode, self.skeleton = flip_test, decode, skeleton
        self.use_udp = decode == "udp"
        self.batch_size = batch_size
        self.autocast_dtype = autocast_dtype

    @torch.no_grad()
    def heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised crops ``(B, 3, H, W)`` → float32 heatmaps ``(B, J, h, w)`` (flip averaged)."""
        x = x.to(self.device, non_blocking=True)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        if self.flip_test:
            x = torch.cat([x, x.flip(-1)], dim=0)
        enabled = self.autocast_dtype is not None
        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=enabled):
            hm = self.model(x).float()
        if self.flip_test:
            b = hm.shape[0] // 2
            hm = 0.5 * (hm[:b] + flip_back(hm[b:], self.skeleton, shift=not self.use_udp))
        return hm

    def from_crops(self, x: np.ndarray, centers: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Crops from :func:`make_crops` → keypoints ``(N, J, 3)``: image px (x, y) + score."""
        out = []
        for s in range(0, len(x), self.batch_size):
            hm = self.heatmaps(torch.from_numpy(x[s : s + self.batch_size]))
            coords, maxvals = decode_heatmaps(hm, self.decode)
            sl = slice(s, s + self.batch_size)
            xy = crop_to_image(
                coords.cpu().double().numpy(),
                centers[sl],
                scales[sl],
                self.heatmap_size,
                use_udp=self.use_udp,
            )
            out.append(np.concatenate([xy, maxvals.cpu().double().numpy()[..., None]], -1))
        if not out:
            return np.zeros((0, self.skeleton.num_joints, 3), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)

    def __call__(self, images: list[np.ndarray], boxes_xywh: np.ndarray) -> np.ndarray:
        """RGB images (one per box) + boxes ``(N, 4)`` → keypoints ``(N, J, 3)`` in image px."""
        x, c, s = make_crops(images, boxes_xywh, self.input_size, self.use_udp)
        return self.from_crops(x, c, s)


def estimate_2d(
    frames,
    estimator: TopDownEstimator,
    box_source: BoxSource,
    tracker: MainPersonTracker,
    chunk: int = 32,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stream the frames: boxes → main person → crops, run in chunks of ``chunk`` crops.

    Returns COCO keypoints ``(F, 17, 3)`` (NaN where missing), boxes ``(F, 5)``, sizes ``(F, 2)``.
    A frame yielded with ``image=None`` (unreadable) is missing.
    """
    kpts, boxes, sizes = [], [], []
    pending: list[tuple[int, np.ndarray, np.ndarray]] = []  # (frame, crop, (centre, scale))

    def flush() -> None:
        if not pending:
            return
        idx = [p[0] for p in pending]
        x = np.stack([p[1] for p in pending])
        cs = np.stack([p[2] for p in pending])
        out = estimator.from_crops(x, cs[:, 0], cs[:, 1])
        for f, k in zip(idx, out, strict=True):
            kpts[f] = k
        pending.clear()

    nj = estimator.skeleton.num_joints
    for f, name, image in frames:
        if image is None:  # an unreadable image (``ImageFrames(on_unreadable="missing")``)
            sizes.append(None)
            kpts.append(np.full((nj, 3), np.nan, dtype=np.float32))
            boxes.append(np.full(5, np.nan, dtype=np.float32))
            tracker.update(np.zeros((0, 5)))
            continue
        h, w = image.shape[:2]
        sizes.append((w, h))
        cand = box_source(f, name, image)
        k = tracker.update(cand)
        kpts.append(np.full((nj, 3), np.nan, dtype=np.float32))
        if k < 0:
            boxes.append(np.full(5, np.nan, dtype=np.float32))
            continue
        box = np.asarray(cand, dtype=np.float32).reshape(-1, 5)[k]
        boxes.append(box)
        x, c, s = make_crops([image], box[None, :4], estimator.input_size, estimator.use_udp)
        pending.append((f, x[0], np.stack([c[0], s[0]])))
        if len(pending) >= chunk:
            flush()
    flush()
    if not sizes:
        raise ValueError("the input has no frames")
    known = [s for s in sizes if s is not None]
    if not known:
        raise BadInputError("none of the input images could be read")
    sizes = [known[0] if s is None else s for s in sizes]  # unreadable: the first size seen
    return np.stack(kpts), np.stack(boxes), np.asarray(sizes, dtype=np.int64)
