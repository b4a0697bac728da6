"""LiftingModule: the thin LightningModule around :class:`PoseLifter` and :class:`LiftingLoss`.

Batches follow docs/CONTRACTS.md (``input_2d (B, T, J, 2)``, ``target_3d (B, T, J, 3)``,
``action``, ``seq``, ``frame``, ``index``). Validation/test score the centre frame of every
window (root zeroed), optionally averaging with the prediction on the mirrored input (flip
test-time augmentation), and log ``<stage>/mpjpe`` (action-wise, the paper's number),
``<stage>/mpjpe_framewise``, ``<stage>/p_mpjpe``, ``<stage>/mpjve``, per-action keys
``<stage>/mpjpe/<action>``; on MPI-INF-3DHP ``<stage>/pck``, ``<stage>/auc``, ``<stage>/mpjpe``.
"""

from __future__ import annotations

from typing import Literal, get_args

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor, nn

from datamodules.skeleton import H36M, H36M_ACTIONS, MPI_INF_3DHP, Skeleton, flip_pose
from pose3d.attention import AttnImpl, LayerImpl
from pose3d.blocks import Position
from pose3d.init import ModuleInit
from pose3d.lifter import Head, PoseLifter
from pose3d.loss import LiftingLoss
from pose3d.metrics import (
    EVAL_ROOTS,
    EvalRoot,
    H36MMetrics,
    MPI3DHPMetrics,
    flatten_metrics,
    zero_root,
    zeroes_predicted_root,
)
from pose3d.tam import TamMode

OptimizerName = Literal["adam", "adamw"]
OPTIMIZERS: tuple[str, ...] = get_args(OptimizerName)
CompileMode = Literal["off", "default", "reduce-overhead", "max-autotune"]
COMPILE_MODES: tuple[str, ...] = get_args(CompileMode)
# Hyper-parameters that change the network's weights or what they compute: a checkpoint only
# makes sense in a model built with the same values (attn_impl, dropout etc. may differ).
ARCHITECTURE_KEYS = ("frames", "num_joints", "spatial_dim", "spatial_depth", "temporal_depth",
                     "spatial_heads", "temporal_heads", "mlp_ratio", "use_sam", "sam_position",
                     "sam_kernel", "sam_groups", "use_tam", "tam_position", "tam_mode",
                     "head")  # fmt: skip


def architecture_mismatch(saved: dict, current: dict) -> dict[str, tuple]:
    """``{key: (checkpoint value, current value)}`` for the architecture keys that differ
    (keys missing from an old checkpoint are skipped)."""
    return {
        k: (saved[k], current.get(k))
        for k in ARCHITECTURE_KEYS
        if k in saved and saved[k] != current.get(k)
    }


class LiftingModule(pl.LightningModule):
    """The 3D lifter (:class:`PoseLifter`), its loss and its optimisation recipe.

    Defaults are the paper's: Adam, lr 1e-3, ×0.95 every 2 epochs, dropout 0.1.

    Args:
        frames: window length T (odd, 1..243); set through data.frames (linked).
        num_joints: J, joints per frame (17 for Human3.6M and MPI-INF-3DHP).
        spatial_dim: per-joint width Ds of the spatial stage (temporal width J·Ds).
        spatial_depth: number of spatial transformer blocks.
        temporal_depth: number of temporal transformer blocks.
        spatial_heads: attention heads of the spatial blocks.
        temporal_heads: attention heads of the temporal blocks.
        mlp_ratio: MLP hidden width / block width.
        dropout: dropout after positional embeddings, attention projection and MLP.
        attn_dropout: dropout on the attention weights.
        drop_path: stochastic depth, rising linearly to this value over each stage.
        use_sam: the Spatial Attention Module in every spatial block (Table VI).
        sam_position: SAM place in the block: before_msa, after_msa or after_mlp (Table VIII).
        sam_kernel: SAM depth-wise kernel length along the joint axis (odd).
        sam_groups: SAM GroupNorm groups (must divide spatial_dim).
        use_tam: the Temporal Attention Module in every temporal block (Table VI).
        tam_position: TAM place in the block: before_msa, after_msa or after_mlp (Table VIII).
        tam_mode: TAM reading: frame (T×T frame correlation, default), joint or channel.
        head: sequence (per-frame 3D for all T frames, paper) or center (PoseFormer, 1 frame).
        attn_impl: attention kernel: auto (fused SDPA, chunked on CUDA), sdpa or math.
        attn_chunk: most items per fused attention call (None: the safe default on CUDA).
        layer_impl: fast (view-based SAM/TAM/MSA layouts) or reference (the literal
            formulation); same weights and numbers, see pose3d.attention.
        compile_mode: torch.compile the network for the training step: off, default,
            reduce-overhead (CUDA graphs; static shapes) or max-autotune. Weights and state-dict
            keys are unchanged; evaluation runs eagerly.
        fused_optimizer: use Adam/AdamW's fused kernel when the parameters are on CUDA (one
            kernel for all parameters); false: PyTorch's default (foreach) implementation.
        activation_checkpointing: recompute blocks in backward (less memory, ~1/3 more compute).
        sam_tam_init: default (PyTorch init) or identity (each SAM/TAM starts as the identity:
            last map of its residual branch zeroed, see pose3d.init).
        lambda_s: weight of Ls, the MPJPE of the centre frame.
        lambda_t: weight of Lt, the MPJPE over all output frames (sequence head).
        lambda_v: weight of the optional velocity (MPJVE) loss term; 0 = off.
        optimizer: adam or adamw.
        lr: learning rate.
        weight_decay: optimizer weight decay.
        amsgrad: use the AMSGrad variant of Adam/AdamW.
        lr_decay: learning-rate factor applied every lr_decay_every epochs.
        lr_decay_every: epochs between learning-rate decays.
        flip_test: at val/test, average with the prediction on the mirrored input.
        eval_root: the predicted root joint at val/test/predict: predicted (scored as output,
            the official PoseFormer/VideoPose3D evaluation), zero (set to 0 first) or auto
            (Human3.6M predicted, MPI-INF-3DHP zero); see pose3d.metrics.EvalRoot.
    """

    def __init__(
        self,
        frames: int = 81,
        num_joints: int = 17,
        spatial_dim: int = 32,
        spatial_depth: int = 4,
        temporal_depth: int = 4,
        spatial_heads: int = 8,
        temporal_heads: int = 8,
        mlp_ratio: float = 2.0,
        dropout: float = 0.1,
        attn_dropout: float = 0.0,
        drop_path: float = 0.1,
        use_sam: bool = True,
        sam_position: Position = "after_msa",
        sam_kernel: int = 5,
        sam_groups: int = 8,
        use_tam: bool = True,
        tam_position: Position = "after_msa",
        tam_mode: TamMode = "frame",
        head: Head = "sequence",
        attn_impl: AttnImpl = "auto",
        attn_chunk: int | None = None,
        layer_impl: LayerImpl = "fast",
        compile_mode: CompileMode = "off",
        fused_optimizer: bool = True,
        activation_checkpointing: bool = False,
        sam_tam_init: ModuleInit = "default",
        lambda_s: float = 1.0,
        lambda_t: float = 1.0,
        lambda_v: float = 0.0,
        optimizer: OptimizerName = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        lr_decay: float = 0.95,
        lr_decay_every: int = 2,
        flip_test: bool = True,
        eval_root: EvalRoot = "auto",
    ) -> None:
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if eval_root not in EVAL_ROOTS:
            raise ValueError(f"eval_root must be one of {EVAL_ROOTS}, got {eval_root!r}")
        self.save_hyperparameters()
        hp = self.hparams
        self.model = PoseLifter(
            frames=frames, num_joints=num_joints, spatial_dim=spatial_dim,
            spatial_depth=spatial_depth, temporal_depth=temporal_depth,
            spatial_heads=spatial_heads, temporal_heads=temporal_heads, mlp_ratio=mlp_ratio,
            dropout=dropout, attn_dropout=attn_dropout, drop_path=drop_path, use_sam=use_sam,
            sam_position=sam_position, sam_kernel=sam_kernel, sam_groups=sam_groups,
            use_tam=use_tam, tam_position=tam_position, tam_mode=tam_mode, head=head,
            attn_impl=attn_impl, attn_chunk=attn_chunk, layer_impl=layer_impl,
            activation_checkpointing=activation_checkpointing, sam_tam_init=sam_tam_init,
        )  # fmt: skip
        if compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode must be one of {COMPILE_MODES}, got {compile_mode!r}")
        self._compiled: dict[str, nn.Module] = {}  # a plain dict: no duplicate state-dict keys
        self.criterion = LiftingLoss(hp.lambda_s, hp.lambda_t, hp.lambda_v)
        self.metrics: H36MMetrics | MPI3DHPMetrics | None = None

    # -- data-dependent pieces ---------------------------------------------------------------
    def _datamodule(self):
        trainer = getattr(self, "_trainer", None)
        return getattr(trainer, "datamodule", None) if trainer is not None else None

    @property
    def skeleton(self) -> Skeleton:
        return getattr(self._datamodule(), "skeleton", H36M)

    def setup(self, stage: str) -> None:
        dm = self._datamodule()
        groups = list(getattr(dm, "group_names", H36M_ACTIONS))
        skel = self.skeleton
        cls = MPI3DHPMetrics if skel.name == MPI_INF_3DHP.name else H36MMetrics
        self.metrics = cls(groups, root=skel.root, zero_root=self.zeroes_root)

    @property
    def zeroes_root(self) -> bool:
        """Whether val/test/predict set the predicted root joint to 0 (``eval_root``)."""
        return zeroes_predicted_root(self.hparams.get("eval_root", "auto"), self.skeleton.name)

    # -- forward -----------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        """``(B, T, J, 2)`` → ``(B, T|1, J, 3)``."""
        return self.model(x)

    def predict_window(self, x: Tensor, flip: bool | None = None) -> Tensor:
        """Prediction with optional flip averaging: ``(B, T, J, 2)`` → ``(B, T|1, J, 3)``."""
        pred = self.model(x)
        if self.hparams.flip_test if flip is None else flip:
            skel = self.skeleton
            pred_flip = flip_pose(self.model(flip_pose(x, skel)), skel)
            pred = (pred + pred_flip) / 2
        return pred

    # -- steps -------------------------------------------------------------------------------
    def _train_model(self) -> nn.Module:
        """The network the training step runs: ``self.model``, or its compiled wrapper."""
        mode = self.hparams.get("compile_mode", "off")
        if mode == "off":
            return self.model
        if "train" not in self._compiled:
            self._compiled["train"] = torch.compile(self.model, mode=mode)
        return self._compiled["train"]

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        if "flip_pending" in batch:  # a loader passed to fit() without its DataModule
            raise RuntimeError(
                "the training batch holds unmirrored windows (flip_pending): pass the 3D "
                "DataModule to fit (datamodule=...), whose on_after_batch_transfer mirrors them"
            )
        pred = self._train_model()(batch["input_2d"])
        terms = self.criterion(pred, batch["target_3d"])
        bs = batch["input_2d"].shape[0]
        self.log_dict({f"train/{k}": v.detach() for k, v in terms.items()}, batch_size=bs,
                      on_step=True, on_epoch=True, prog_bar=False)  # fmt: skip
        self.log("train/mpjpe_mm", terms["loss_s"].detach() * 1000.0, batch_size=bs,
                 prog_bar=True)  # fmt: skip
        return terms["loss"]

    def _eval_step(self, batch: dict) -> None:
        pred = self.predict_window(batch["input_2d"])
        assert self.metrics is not None, "setup() builds the metrics"
        self.metrics.update(pred, batch["target_3d"], batch["action"], batch["seq"],
                            batch["frame"], batch["index"])  # fmt: skip

    def _eval_epoch_end(self, stage: str) -> None:
        assert self.metrics is not None
        result = self.metrics.compute()
        self.metrics.reset()
        flat = flatten_metrics(result, prefix=f"{stage}/")
        main = {k: flat.pop(k) for k in (f"{stage}/mpjpe", f"{stage}/pck") if k in flat}
        # Already reduced across ranks by torchmetrics: identical everywhere, no second sync.
        self.log_dict(main, prog_bar=True, sync_dist=False)
        self.log_dict(flat, prog_bar=False, sync_dist=False)
        if not self.trainer.sanity_checking:  # every MPJPE is printed with what it covers
            rank_zero_info(
                f"{stage} MPJPE {result['mpjpe']:.1f} mm on {result['frames']} scored frames"
            )

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        """Centre-frame 3D pose per window: ``pose_3d (B, J, 3)`` metres, root-relative, its root
        joint as evaluation scores it (``eval_root``), with the batch's ``target_3d`` centre frame
        and ``seq``/``frame``/``index``."""
        pred = self.model.center_frame(self.predict_window(batch["input_2d"])).float()
        t = batch["target_3d"].shape[1] // 2
        out = {"pose_3d": zero_root(pred, self.skeleton.root) if self.zeroes_root else pred,
               "target_3d": batch["target_3d"][:, t].float()}  # fmt: skip
        out.update({k: batch[k] for k in ("seq", "frame", "index")})
        return out

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse a checkpoint of another architecture with the flags to pass, instead of a
        size-mismatch error (e.g. ``frames``) or silently wrong numbers (e.g. positions)."""
        diff = architecture_mismatch(checkpoint.get("hyper_parameters", {}), dict(self.hparams))
        if diff:
            flags = " ".join(
                f"--data.init_args.frames={v[0]}" if k == "frames" else f"--model.{k}={v[0]}"
                for k, v in diff.items()
            )
            detail = ", ".join(
                f"{k}: checkpoint {a!r} vs config {b!r}" for k, (a, b) in diff.items()
            )
            raise ValueError(
                f"the checkpoint was trained with another architecture ({detail}). "
                f"Build the model like the checkpoint: {flags}"
                + (" (make eval-3d FRAMES=...)" if "frames" in diff else "")
            )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Record the frame rate the lifter was trained at (``frame_rate``: dataset fps ÷
        downsample, None when unknown) so inference can resample a video to it, and whether the
        training data was synthetic (``training_data``; inference warns about demo models)."""
        dm = self._datamodule()
        checkpoint["frame_rate"] = getattr(dm, "frame_rate", None)
        checkpoint["training_data"] = {
            "datamodule": type(dm).__name__ if dm is not None else None,
            "synthetic": bool(getattr(dm, "synthetic", False)),
        }

    # -- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self):
        hp = self.hparams
        cls = torch.optim.AdamW if hp.optimizer == "adamw" else torch.optim.Adam
        fused = hp.get("fused_optimizer", True) and self.device.type == "cuda"
        opt = cls(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay, amsgrad=hp.amsgrad,
                  **({"fused": True} if fused else {}))  # fmt: skip
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=hp.lr_decay_every, gamma=hp.lr_decay)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
