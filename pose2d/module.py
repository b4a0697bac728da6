"""``HeatmapModule``: the thin LightningModule that trains and evaluates the 2D detector.

Training: ``JointsMSELoss`` on ``(B, J, h, w)`` heatmaps, Adam + MultiStepLR (official recipe:
lr 1e-3, no weight decay, ×0.1 at epochs 170 and 200 of 210). Validation/test: loss, then the
official test-time path — flip test (mirrored crop, heatmaps flipped back with
``COCO.flip_index`` and shifted one pixel right), decode (standard | dark | udp), map heatmap px to
image px with the inverse crop warp (official ``transform_preds``), and COCO keypoint AP via
:class:`pose2d.coco_metric.COCOKeypointMetric` (rescoring + OKS-NMS inside).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info

from datamodules.skeleton import COCO
from pose2d.cli_types import CamPlacement, plain
from pose2d.coco_metric import COCOKeypointMetric, MetricBackend
from pose2d.heatmaps import DecodeMethod, decode_heatmaps, flip_back
from pose2d.hrnet import CamInit, CamModules, PoseHighResolutionNet
from pose2d.loss import JointsMSELoss
from pose2d.transforms import crop_to_image

log = logging.getLogger(__name__)

STAT_KEYS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


class HeatmapModule(pl.LightningModule):
    """HRNet(+CAM) heatmap detector.

    Args:
        width: HRNet width (32 → W32, 48 → W48; small values for CPU experiments).
        cam_placement: CAM preset (``none``, ``paper``, ``sub1``, ``sub21``, ``sub321``,
            ``stage1``, ``stage21``, ``stage321``) or sites ``"2.0,3.0"``; see ``pose2d.hrnet``.
        cam_reduction: CAM shrinking ratio ``s``.
        cam_blocks: CAMs go on the last ``cam_blocks`` residual blocks of each chosen branch.
        cam_modules: ``last`` (the last module of a stage) or ``all`` modules of the stage.
        num_blocks: residual blocks per branch in each HRNet module (official 4).
        stage_modules: HRNet modules in stages 2, 3, 4 (official [1, 4, 3]).
        stem_channels: stem / layer1 width (official 64).
        num_joints: heatmap channels (17 for COCO).
        pretrained: ImageNet or COCO-pose HRNet ``.pth`` to initialise from (``None``: scratch).
        cam_init: ``auto`` (identity with ``pretrained``, else normal), ``normal`` (official
            conv init: CAM gates start at ≈0.5, from-scratch training as in the paper) or
            ``identity`` (CAM gates start as a no-op: the initial output equals the plain
            network's, so fine-tuning starts at the pretrained model); see
            ``PoseHighResolutionNet.cam_identity_init``.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        milestones: epochs at which MultiStepLR multiplies the lr by ``gamma`` ([170, 200]).
        gamma: MultiStepLR factor.
        use_target_weight: weight each joint's loss by its visibility.
        flip_test: average with the horizontally flipped crop at validation/test/predict.
        shift_heatmap: shift flipped heatmaps one pixel right (official; ``None`` = on unless
            ``decode_method="udp"``).
        decode_method: ``standard`` (argmax + quarter offset), ``dark`` or ``udp``. ``udp``
            also maps back with the UDP warp, so the data must be cropped with UDP as well.
        channels_last: run the network in NHWC memory format (faster convs on recent GPUs).
            With it, also pass ``--trainer.benchmark=true`` (cuDNN picks the fastest kernels).
        fused_optimizer: use Adam's fused kernel when the parameters are on CUDA; false:
            PyTorch's default (foreach) implementation, as the official code.
        compile_mode: torch.compile the network for the training step: off, default,
            reduce-overhead (CUDA graphs) or max-autotune; weights and state-dict keys unchanged.
        metric_backend: ``pycocotools`` or ``faster_coco_eval``.
        save_results: after each validation/test epoch, rank 0 writes the COCO results list
            (rescored, OKS-NMS'd: the file COCOeval scored) to
            ``<default_root_dir>/results/keypoints_<stage>_results.json``.
    """

    def __init__(
        self,
        width: int = 32,
        cam_placement: CamPlacement = "none",
        cam_reduction: int = 4,
        cam_blocks: int = 2,
        cam_modules: CamModules = "last",
        num_blocks: int = 4,
        stage_modules: list[int] | None = None,
        stem_channels: int = 64,
        num_joints: int = 17,
        pretrained: str | None = None,
        cam_init: CamInit = "auto",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        milestones: list[int] | None = None,
        gamma: float = 0.1,
        use_target_weight: bool = True,
        flip_test: bool = True,
        shift_heatmap: bool | None = None,
        decode_method: DecodeMethod = "standard",
        channels_last: bool = False,
        fused_optimizer: bool = True,
        compile_mode: Literal["off", "default", "reduce-overhead", "max-autotune"] = "off",
        metric_backend: MetricBackend = "pycocotools",
        save_results: bool = True,
    ) -> None:
        super().__init__()
        stage_modules = list(stage_modules or [1, 4, 3])
        milestones = list(milestones or [170, 200])
        cam_placement = plain(cam_placement)  # a parsed CamSites is a str subclass
        self.save_hyperparameters()
        self.hparams.stage_modules, self.hparams.milestones = stage_modules, milestones
        if decode_method not in ("standard", "dark", "udp"):
            raise ValueError(f"decode_method must be standard|dark|udp, got {decode_method!r}")
        self.model = PoseHighResolutionNet(
            width=width,
            num_joints=num_joints,
            cam_placement=cam_placement,
            cam_reduction=cam_reduction,
            cam_blocks=cam_blocks,
            cam_modules=cam_modules,
            num_blocks=num_blocks,
            stage_modules=stage_modules,
            stem_channels=stem_channels,
            pretrained=pretrained,
            cam_init=cam_init,
        )
        self.criterion = JointsMSELoss(use_target_weight)
        self.skeleton = COCO
        self.shift = decode_method != "udp" if shift_heatmap is None else shift_heatmap
        self.metrics: dict[str, COCOKeypointMetric | None] = {}
        self._box_source_logged: set[str] = set()

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, *args, **kwargs):  # noqa: D102
        # The checkpoint holds every weight: do not re-read (or require) the ``pretrained`` file
        # that initialised the run.
        kwargs.setdefault("pretrained", None)
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    # -- forward -----------------------------------------------------------------------------
    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` → heatmaps ``(B, J, H/4, W/4)``."""
        if self.hparams.channels_last:
            img = img.contiguous(memory_format=torch.channels_last)
        return self.model(img)

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer else None
        data_udp = getattr(getattr(dm, "hparams", {}), "get", lambda *_: None)("use_udp")
        if data_udp is not None and bool(data_udp) != (self.hparams.decode_method == "udp"):
            raise ValueError(
                f"decode_method={self.hparams.decode_method!r} but data.use_udp={data_udp}: UDP "
                "crops need --model.decode_method=udp and vice versa"
            )
        if self.hparams.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def test_time_heatmaps(self, img: torch.Tensor) -> torch.Tensor:
        """Heatmaps ``(B, J, h, w)`` in float32, flip-averaged when ``flip_test`` is on."""
        if not self.hparams.flip_test:
            return self(img).float()
        hm = self(torch.cat([img, img.flip(-1)])).float()
        b = img.shape[0]
        return 0.5 * (hm[:b] + flip_back(hm[b:], self.skeleton, shift=self.shift))

    def keypoints(
        self, heatmaps: torch.Tensor, center: torch.Tensor, scale: torch.Tensor
    ) -> torch.Tensor:
        """Heatmaps ``(B, J, h, w)`` + crop centre/scale ``(B, 2)`` (image px) → ``(B, J, 3)``:
        image-pixel x, y and the peak value as score."""
        coords, maxvals = decode_heatmaps(heatmaps, self.hparams.decode_method)
        h, w = heatmaps.shape[-2:]
        xy = crop_to_image(
            coords.double(),
            center.double(),
            scale.double(),
            (w, h),
            use_udp=self.hparams.decode_method == "udp",
        )
        return torch.cat([xy.float(), maxvals.float().unsqueeze(-1)], dim=-1)

    # -- steps -------------------------------------------------------------------------------
    def _train_forward(self, img: torch.Tensor) -> torch.Tensor:
        """The training step's forward: eager, or the compiled network (``compile_mode``)."""
        mode = self.hparams.get("compile_mode", "off")
        if mode == "off":
            return self(img)
        if not hasattr(self, "_compiled"):  # a plain dict: no duplicate state-dict keys
            self._compiled = {"train": torch.compile(self.model, mode=mode)}
        if self.hparams.channels_last:
            img = img.contiguous(memory_format=torch.channels_last)
        return self._compiled["train"](img)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        pred = self._train_forward(batch["image"])
        loss = self.criterion(pred, batch["heatmap"], batch["target_weight"])
        self.log("train/loss", loss, prog_bar=True, batch_size=pred.shape[0])
        return loss

    def _eval_step(self, batch: dict, stage: str) -> None:
        img = batch["image"]
        hm = self.test_time_heatmaps(img)
        loss = self.criterion(hm, batch["heatmap"].float(), batch["target_weight"])
        self.log(f"{stage}/loss", loss, sync_dist=True, batch_size=img.shape[0])
        metric = self._metric(stage)
        if metric is not None:
            kpts = self.keypoints(hm, batch["center"], batch["scale"])
            metric.update(
                batch["index"], batch["image_id"], kpts, batch["box_score"], batch["area"],
                batch.get("unreadable"),
            )  # fmt: skip

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict:
        """→ ``keypoints (B, J, 3)`` (image px + score) with the batch's ids when present."""
        hm = self.test_time_heatmaps(batch["image"])
        out = {"keypoints": self.keypoints(hm, batch["center"], batch["scale"])}
        for key in ("image_id", "index", "box_score", "area"):
            if key in batch:
                out[key] = batch[key]
        return out

    # -- metric ------------------------------------------------------------------------------
    def _metric(self, stage: str) -> COCOKeypointMetric | None:
        """One metric per stage, built from the datamodule's annotation file on first use."""
        if stage not in self.metrics:
            dm = getattr(self.trainer, "datamodule", None) if self._trainer else None
            if dm is None or not hasattr(dm, "ann_file"):
                log.warning("no datamodule.ann_file: %s AP is not computed (loss only)", stage)
                self.metrics[stage] = None
            else:
                self.metrics[stage] = COCOKeypointMetric(
                    dm.ann_file(stage), backend=self.hparams.metric_backend
                ).to(self.device)
        return self.metrics[stage]

    def _epoch_end(self, stage: str) -> None:
        metric = self.metrics.get(stage)
        if metric is None:
            return
        stats = metric.compute()
        metric.reset()
        if self.hparams.save_results and self.trainer.is_global_zero:
            name = f"keypoints_{stage}_results.json"
            metric.save(Path(self.trainer.default_root_dir) / "results" / name)
        # compute() gathers every rank's predictions, so all ranks log the same numbers.
        self.log_dict({f"{stage}/{k}": float(stats[k]) for k in STAT_KEYS if k in stats})
        dm = self.trainer.datamodule
        skipped = self._log_skipped(stage, metric.skipped_samples, dm)
        # test/predict may use other boxes than validation (``data.test_boxes``)
        box_source = getattr(dm, "test_box_source" if stage == "test" else "box_source", None)
        box_source = box_source or getattr(dm, "box_source", "unknown")
        if stage not in self._box_source_logged:  # a run-level fact: log it once per stage
            self._box_source_logged.add(stage)
            for logger in self.loggers:
                logger.log_hyperparams({f"{stage}_box_source": str(box_source)})
        rank_zero_info(
            f"{stage} AP {stats.get('AP', float('nan')):.4f} (boxes: {box_source}){skipped}"
        )

    def _log_skipped(self, stage: str, skipped, dm) -> str:
        """Log ``<stage>/skipped_images`` / ``skipped_persons`` (unreadable images: their
        persons are not scored); returns the note for the printed AP line ('' when none)."""
        ds = getattr(dm, "val_set" if stage == "val" else "test_set", None)
        names = getattr(ds, "file_name", None)
        images = len(set(names[skipped].tolist())) if names is not None else len(skipped)
        self.log_dict(
            {
                f"{stage}/skipped_images": float(images),
                f"{stage}/skipped_persons": float(len(skipped)),
            }
        )
        if not len(skipped):
            return ""
        total = len(ds) if ds is not None else "?"
        return (
            f"; PARTIAL: {images} unreadable images, {len(skipped)} of {total} persons not "
            "scored (python -m datamodules.coco verify lists them)"
        )

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")

    # -- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self):
        fused = self.hparams.get("fused_optimizer", True) and self.device.type == "cuda"
        opt = torch.optim.Adam(
            self.parameters(),
            lr=self.hparams.lr,
            weight_decay=self.hparams.weight_decay,
            **({"fused": True} if fused else {}),
        )
        sched = torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=self.hparams.milestones, gamma=self.hparams.gamma
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
