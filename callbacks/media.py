"""Validation pictures for W&B: 2D keypoint overlays + heatmaps, 3D skeletons prediction vs GT.

Runs the network (``pl_module.model``, see docs/CONTRACTS.md) once on the first
``num_samples`` items of the first validation batch, every ``every_n_epochs`` epochs, on rank 0
only and only when a WandbLogger is attached (nothing is rendered otherwise, so CSV/no-logger
runs pay nothing). The batch layout decides the kind: ``input_2d`` → 3D lifter, ``image`` → 2D.
matplotlib renders on the Agg canvas (no display).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import pytorch_lightning as pl
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import WandbLogger

from datamodules.coco_transforms import IMAGENET_MEAN_RGB as IMAGENET_MEAN
from datamodules.coco_transforms import IMAGENET_STD_RGB as IMAGENET_STD
from datamodules.skeleton import COCO, Skeleton


def denormalize_image(
    image: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> np.ndarray:
    """Normalised ``(3, H, W)`` float tensor → ``(H, W, 3)`` uint8 RGB."""
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    rgb = (image.detach().float().cpu() * s + m).clamp(0, 1) * 255
    return np.ascontiguousarray(rgb.round().byte().permute(1, 2, 0).numpy())


def draw_keypoints(image: np.ndarray, keypoints: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """``(J, 2|3)`` pixel keypoints [+ score] drawn on a copy of ``(H, W, 3)`` uint8."""
    from pose3d.draw import draw_skeleton_2d

    return draw_skeleton_2d(image, np.asarray(keypoints, dtype=np.float64), skeleton)


def heatmap_overlay(image: np.ndarray, heatmaps: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Max over joints of ``(J, h, w)`` heatmaps, coloured and blended on ``(H, W, 3)`` uint8."""
    peak = np.clip(np.asarray(heatmaps, dtype=np.float32).max(axis=0), 0.0, 1.0)
    peak = cv2.resize(peak, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    colour = cv2.applyColorMap((peak * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    return cv2.addWeighted(image, 1.0 - alpha, np.ascontiguousarray(colour), alpha, 0.0)


def skeleton_3d_figure(
    pred: np.ndarray, gt: np.ndarray, skeleton: Skeleton, title: str = "", size_px: int = 360
) -> np.ndarray:
    """Prediction (solid red) and GT (dashed black) ``(J, 3)`` root-relative metres in one 3D
    plot → ``(size_px, size_px, 3)`` uint8 RGB. Camera axes (x right, y down, z forward) are
    shown as (x, z, -y) so "up" is up."""
    fig = Figure(figsize=(size_px / 100, size_px / 100), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot(111, projection="3d")
    both = np.concatenate([pred, gt], 0)
    r = float(np.abs(both[np.isfinite(both)]).max()) if np.isfinite(both).any() else 1.0
    r = max(r, 1e-3)
    for pose, style in ((gt, dict(c="k", ls="--", lw=1.5)), (pred, dict(c="tab:red", lw=2))):
        p = pose - pose[skeleton.root]
        for a, b in skeleton.limbs:
            ax.plot([p[a, 0], p[b, 0]], [p[a, 2], p[b, 2]], [-p[a, 1], -p[b, 1]], **style)
    ax.set_xlim(-r, r)
    ax.set_ylim(-r, r)
    ax.set_zlim(-r, r)
    ax.view_init(elev=15.0, azim=-70.0)
    ax.set_title(title, fontsize=8)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _centre(x: torch.Tensor) -> torch.Tensor:
    """``(B, T, J, C)`` → centre frame ``(B, J, C)``."""
    return x[:, x.shape[1] // 2]


class MediaLogger(Callback):
    """Logs ``val/media/*`` images to W&B.

    Args:
        every_n_epochs: render on epochs where ``(epoch + 1) % every_n_epochs == 0``
            (0 disables media).
        num_samples: items of the first validation batch to draw.
        mean, std: the image normalisation to undo for 2D overlays.
    """

    def __init__(
        self,
        every_n_epochs: int = 5,
        num_samples: int = 4,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ) -> None:
        self.every_n_epochs = every_n_epochs
        self.num_samples = num_samples
        self.mean = tuple(mean)
        self.std = tuple(std)

    def _wandb(self, trainer: pl.Trainer) -> WandbLogger | None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                return logger
        return None

    def _due(self, trainer: pl.Trainer) -> bool:
        n = self.every_n_epochs
        return bool(n) and not trainer.sanity_checking and (trainer.current_epoch + 1) % n == 0

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx != 0 or dataloader_idx != 0 or not trainer.is_global_zero:
            return
        logger = self._wandb(trainer)
        if logger is None or not self._due(trainer) or not isinstance(batch, dict):
            return
        with torch.no_grad():
            if "input_2d" in batch:
                images, captions = self.render_3d(trainer, pl_module, batch)
                logger.log_image("val/media/skeleton_3d", images, caption=captions)
            elif "image" in batch:
                overlays, heatmaps = self.render_2d(pl_module, batch)
                logger.log_image("val/media/keypoints", overlays)
                logger.log_image("val/media/heatmaps", heatmaps)

    def render_3d(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: dict
    ) -> tuple[list[np.ndarray], list[str]]:
        """Skeleton pictures (pred vs GT, centre frame) for the first ``num_samples`` items."""
        skeleton = getattr(trainer.datamodule, "skeleton", None)
        if skeleton is None:
            from datamodules.skeleton import H36M as skeleton
        k = self.num_samples
        pred = pl_module.model(batch["input_2d"][:k]).float()
        pred = _centre(pred).cpu().numpy()
        gt = _centre(batch["target_3d"][:k]).float().cpu().numpy()
        names = list(getattr(trainer.datamodule, "group_names", None) or [])
        images, captions = [], []
        for i in range(len(pred)):
            err_mm = 1000 * float(np.linalg.norm(pred[i] - gt[i], axis=-1).mean())
            group = ""
            if "action" in batch and names:
                group = names[int(batch["action"][i])] + " "
            caption = f"{group}MPJPE {err_mm:.1f} mm"
            images.append(skeleton_3d_figure(pred[i], gt[i], skeleton, title=caption))
            captions.append(caption)
        return images, captions

    def render_2d(
        self, pl_module: pl.LightningModule, batch: dict
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Keypoint overlays and heatmap overlays for the first ``num_samples`` crops."""
        from pose2d.heatmaps import decode_heatmaps

        k = self.num_samples
        images = batch["image"][:k]
        heatmaps = pl_module.model(images).float()
        method = str(getattr(pl_module.hparams, "decode_method", "standard"))
        coords, maxvals = decode_heatmaps(heatmaps, method=method)
        # heatmap px -> input px: the stride, or UDP's (size - 1) ratio
        off = 1 if method == "udp" else 0
        sx = (images.shape[-1] - off) / (heatmaps.shape[-1] - off)
        sy = (images.shape[-2] - off) / (heatmaps.shape[-2] - off)
        pts = coords.cpu().numpy() * np.array([sx, sy])
        scores = maxvals.cpu().numpy()[..., None]
        kps = np.concatenate([pts, scores], -1)
        overlays, hm_images = [], []
        for i in range(len(images)):
            rgb = denormalize_image(images[i], self.mean, self.std)
            overlays.append(draw_keypoints(rgb, kps[i], COCO))
            hm_images.append(heatmap_overlay(rgb, heatmaps[i].cpu().numpy()))
        return overlays, hm_images
