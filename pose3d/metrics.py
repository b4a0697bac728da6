"""3D pose metrics: pure torch functions on ``(..., J, 3)`` tensors plus DDP-safe aggregators.

Pure functions are unit-agnostic (errors come back in the unit of the input). The torchmetrics
classes take metres (the batch contract) and report millimetres.

Conventions (see docs/metrics.md): MPJPE averages over all ``J`` joints with the root included
(as 0 after root zeroing); P-MPJPE is a per-frame similarity Procrustes (rotation, uniform scale,
translation, reflections excluded); PCK is *strictly* below the threshold; AUC averages PCK over
the 31 thresholds 0, 5, ..., 150 mm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch
from torch import Tensor
from torchmetrics import Metric

from datamodules.skeleton import H36M, MPI_INF_3DHP, MPI_PCK_JOINTS

PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = tuple(float(t) for t in range(0, 151, 5))  # 31 values, 0 included


# --- pure functions ------------------------------------------------------------------------------
def joint_errors(pred: Tensor, target: Tensor) -> Tensor:
    """Euclidean error per joint: ``(..., J, 3)`` × 2 → ``(..., J)``."""
    return torch.linalg.vector_norm(pred - target, dim=-1)


def mpjpe_per_frame(pred: Tensor, target: Tensor) -> Tensor:
    """Protocol 1 per frame: ``(..., J, 3)`` → ``(...)``, mean over joints."""
    return joint_errors(pred, target).mean(-1)


def mpjpe(pred: Tensor, target: Tensor) -> Tensor:
    """Protocol 1 (MPJPE): mean joint error over every frame and joint → scalar."""
    return joint_errors(pred, target).mean()


def procrustes_align(pred: Tensor, target: Tensor, eps: float = 1e-12) -> Tensor:
    """Align ``pred`` to ``target`` per frame with the optimal similarity transform.

    ``(..., J, 3)`` × 2 → ``(..., J, 3)`` aligned prediction (dtype of ``pred``). Batched SVD in
    float64; where the optimal orthogonal map is a reflection (det < 0) the last column of V and
    the last singular value change sign, so the result is a proper rotation.
    """
    return _procrustes_align64(pred, target, eps).to(pred.dtype)


def _procrustes_align64(pred: Tensor, target: Tensor, eps: float = 1e-12) -> Tensor:
    x = target.to(torch.float64)
    y = pred.to(torch.float64)
    mu_x = x.mean(-2, keepdim=True)
    mu_y = y.mean(-2, keepdim=True)
    x0, y0 = x - mu_x, y - mu_y
    norm_x = torch.linalg.vector_norm(x0, dim=(-2, -1), keepdim=True)
    norm_y = torch.linalg.vector_norm(y0, dim=(-2, -1), keepdim=True).clamp_min(eps)
    x0 = x0 / norm_x.clamp_min(eps)
    y0 = y0 / norm_y
    h = x0.mT @ y0  # (..., 3, 3)
    u, s, vh = torch.linalg.svd(h)
    v = vh.mT
    sign = torch.where(_det3(v) * _det3(u) < 0, -1.0, 1.0).to(s.dtype)  # det(V Uᵀ) < 0: mirror
    flip = torch.ones_like(s)
    flip[..., -1] = sign
    v = v * flip[..., None, :]  # last column of V
    s = s * flip
    r = v @ u.mT  # maps row vectors of y onto x: y @ r
    scale = s.sum(-1)[..., None, None] * norm_x / norm_y
    t = mu_x - scale * (mu_y @ r)
    return scale * (y @ r) + t


def _det3(m: Tensor) -> Tensor:
    """Determinant of ``(..., 3, 3)`` (triple product; batched LU is far slower for 3×3)."""
    return (torch.linalg.cross(m[..., 0, :], m[..., 1, :]) * m[..., 2, :]).sum(-1)


def p_mpjpe_per_frame(pred: Tensor, target: Tensor) -> Tensor:
    """Protocol 2 per frame: error after Procrustes alignment, ``(..., J, 3)`` → ``(...)``."""
    aligned = _procrustes_align64(pred, target)
    return mpjpe_per_frame(aligned, target.to(torch.float64)).to(pred.dtype)


def p_mpjpe(pred: Tensor, target: Tensor) -> Tensor:
    """Protocol 2 (P-MPJPE) → scalar."""
    return p_mpjpe_per_frame(pred, target).mean()


def n_mpjpe_per_frame(pred: Tensor, target: Tensor) -> Tensor:
    """Scale-normalised MPJPE per frame: ``s* = Σ target·pred / Σ pred²`` over joints.

    ``(..., J, 3)`` × 2 → ``(...)``.
    """
    num = (target * pred).sum(dim=(-2, -1), keepdim=True)
    den = (pred * pred).sum(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(pred.dtype).tiny)
    return mpjpe_per_frame(pred * (num / den), target)


def n_mpjpe(pred: Tensor, target: Tensor) -> Tensor:
    """N-MPJPE → scalar."""
    return n_mpjpe_per_frame(pred, target).mean()


def velocity_error_per_step(pred: Tensor, target: Tensor, dim: int = -3) -> Tensor:
    """Velocity error of each consecutive pair along time axis ``dim``.

    ``(..., T, ..., J, 3)`` → same shape without the last two axes and ``T-1`` along ``dim``;
    mean over joints of ``‖Δpred − Δtarget‖``.
    """
    d = torch.diff(pred - target, dim=dim)  # Δpred − Δtarget == Δ(pred − target)
    return torch.linalg.vector_norm(d, dim=-1).mean(-1)


def mpjve(pred: Tensor, target: Tensor, dim: int = -3) -> Tensor:
    """MPJVE: mean velocity error with finite differences along ``dim`` → scalar."""
    return velocity_error_per_step(pred, target, dim=dim).mean()


def _select_joints(err: Tensor, joints: Sequence[int] | None) -> Tensor:
    if joints is None:
        return err
    return err.index_select(-1, torch.as_tensor(list(joints), device=err.device))


def pck(
    err: Tensor,
    threshold: float = PCK_THRESHOLD_MM,
    joints: Sequence[int] | None = MPI_PCK_JOINTS,
) -> Tensor:
    """Percentage of joint errors strictly below ``threshold`` (3DHP PCK, ×100).

    ``err``: ``(..., J)`` per-joint errors in the threshold's unit (mm). ``joints``: scored
    joint indices (default: the 14 3DHP PCK joints; ``None`` = all).
    """
    e = _select_joints(err, joints)
    return (e < threshold).to(torch.float64).mean() * 100.0


def auc(
    err: Tensor,
    thresholds: Sequence[float] = AUC_THRESHOLDS_MM,
    joints: Sequence[int] | None = MPI_PCK_JOINTS,
) -> Tensor:
    """Area under the PCK curve: mean PCK over ``thresholds`` (default 0:5:150 mm), ×100."""
    e = _select_joints(err, joints).reshape(-1)
    th = torch.as_tensor(list(thresholds), dtype=e.dtype, device=e.device)
    return (e[None, :] < th[:, None]).to(torch.float64).mean() * 100.0


# How evaluation treats the predicted root joint (the targets' root is always 0): "predicted"
# scores it as the network output it (VideoPose3D/PoseFormer `evaluate` zero only the target
# root), "zero" sets it to 0 first (MHFormer/MotionBERT-style, and the root-relative 3DHP PCK);
# "auto" = the dataset's usual protocol: Human3.6M "predicted", MPI-INF-3DHP "zero".
EvalRoot = Literal["auto", "predicted", "zero"]
EVAL_ROOTS: tuple[str, ...] = get_args(EvalRoot)


def zeroes_predicted_root(eval_root: str, skeleton_name: str) -> bool:
    """Whether evaluation under ``eval_root`` (:data:`EvalRoot`) zeroes the predicted root."""
    if eval_root not in EVAL_ROOTS:
        raise ValueError(f"eval_root must be one of {EVAL_ROOTS}, got {eval_root!r}")
    if eval_root == "auto":
        return skeleton_name == MPI_INF_3DHP.name
    return eval_root == "zero"


def zero_root(x: Tensor, root: int) -> Tensor:
    """Return a copy of ``(..., J, 3)`` with the root joint set to 0 (not subtracted)."""
    x = x.clone()
    x[..., root, :] = 0
    return x


# --- aggregation helpers -------------------------------------------------------------------------
def first_occurrence(index: Tensor) -> Tensor:
    """Positions of the first occurrence of each distinct value of ``index`` ``(N,)``.

    Used to drop the samples DistributedSampler repeats to even out ranks.
    """
    uniq, inverse = torch.unique(index, return_inverse=True)
    pos = torch.arange(index.numel(), device=index.device)
    first = torch.full((uniq.numel(),), index.numel(), dtype=pos.dtype, device=index.device)
    return first.scatter_reduce(0, inverse, pos, reduce="amin", include_self=True)


def group_mean(values: Tensor, group: Tensor, num_groups: int, weight: Tensor | None = None):
    """Weighted mean of ``values (N,)`` per group id ``(N,)`` → ``(means (G,), weights (G,))``.

    Groups with zero weight get NaN.
    """
    values = values.to(torch.float64)
    w = torch.ones_like(values) if weight is None else weight.to(torch.float64)
    tot = torch.zeros(num_groups, dtype=torch.float64, device=values.device)
    cnt = torch.zeros_like(tot)
    tot.index_add_(0, group, values * w)
    cnt.index_add_(0, group, w)
    return tot / cnt, cnt


def _cat(x: Tensor | list[Tensor]) -> Tensor:
    if isinstance(x, Tensor):
        return x
    return torch.cat(x) if x else torch.empty(0)


# --- torchmetrics aggregators --------------------------------------------------------------------
class _FrameMetric(Metric):
    """Base: keeps ``index``/``group``/``seq``/``frame`` per sample as ``cat`` states."""

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, group_names: Sequence[str], root: int, zero_root: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.group_names = list(group_names)
        self.root = int(root)
        self.zero_root = bool(zero_root)
        for name in ("index", "group", "seq", "frame"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def _prepare(self, pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        if pred.dim() == 4:  # (B, 1, J, 3) centre-frame head output
            pred = pred[:, pred.shape[1] // 2]
        if target.dim() == 4:
            target = target[:, target.shape[1] // 2]
        if pred.shape != target.shape or pred.shape[-1] != 3:
            raise ValueError(
                f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must be "
                "matching (B, J, 3)"
            )
        pred, target = pred.detach().float(), target.detach().float()
        if self.zero_root:
            pred, target = zero_root(pred, self.root), zero_root(target, self.root)
        return pred, target

    def update(
        self,
        pred: Tensor,
        target: Tensor,
        action: Tensor,
        seq: Tensor,
        frame: Tensor,
        index: Tensor,
    ) -> None:
        """One batch: ``pred``/``target`` ``(B, J, 3)`` metres (or ``(B, T, J, 3)``: centre
        frame), ids ``(B,)``."""
        pred, target = self._prepare(pred, target)
        self._accumulate(pred, target)
        self._store_ids(action, seq, frame, index)

    def _accumulate(self, pred: Tensor, target: Tensor) -> None:
        """Append this batch's per-sample errors to the subclass's ``cat`` states."""
        raise NotImplementedError

    def _store_ids(self, action: Tensor, seq: Tensor, frame: Tensor, index: Tensor) -> None:
        self.group.append(action.detach().long().reshape(-1))
        self.seq.append(seq.detach().long().reshape(-1))
        self.frame.append(frame.detach().long().reshape(-1))
        self.index.append(index.detach().long().reshape(-1))

    def _unique(self) -> tuple[Tensor, dict[str, Tensor]]:
        """De-duplicated states: the first position of each ``index`` (sorted by index)."""
        index = _cat(self.index)
        keep = first_occurrence(index)
        return keep, {
            "index": index[keep],
            "group": _cat(self.group)[keep],
            "seq": _cat(self.seq)[keep],
            "frame": _cat(self.frame)[keep],
        }

    def _group_dict(self, means: dict[str, Tensor], counts: Tensor) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for g, name in enumerate(self.group_names):
            if counts[g] > 0:
                out[name] = {k: float(v[g]) for k, v in means.items()} | {"frames": int(counts[g])}
        return out


class H36MMetrics(_FrameMetric):
    """Human3.6M MPJPE (P1), P-MPJPE (P2) and MPJVE, per action, action-wise and frame-wise.

    ``update(pred (B, J, 3) m, target (B, J, 3) m, action (B,), seq (B,), frame (B,),
    index (B,))`` (``(B, 1, J, 3)`` / ``(B, T, J, 3)`` are reduced to the centre frame).
    ``compute()`` → dict in mm::

        {"mpjpe", "p_mpjpe", "mpjve"}:  action-wise averages (unweighted mean over the actions
                                         present of each action's frame-pooled mean)
        {"*_framewise"}:                 mean over all frames
        "frames":                        number of distinct frames scored
        "per_action": {name: {"mpjpe", "p_mpjpe", "mpjve", "frames"}}

    MPJVE follows VideoPose3D: centre-frame predictions ordered by ``frame`` within each ``seq``
    are differenced; each sequence's mean velocity error is weighted by its frame count.
    States: per sample the error vector ``pred − target`` (J×3 float32; MPJPE and MPJVE both
    derive from it) and the P-MPJPE scalar; ~111 MB for the 543k H36M test frames.
    """

    def __init__(
        self,
        group_names: Sequence[str],
        root: int = H36M.root,
        zero_root: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(group_names, root, zero_root, **kwargs)
        self.add_state("diff", default=[], dist_reduce_fx="cat")
        self.add_state("p_err", default=[], dist_reduce_fx="cat")

    def _accumulate(self, pred: Tensor, target: Tensor) -> None:
        self.diff.append(pred - target)
        self.p_err.append(p_mpjpe_per_frame(pred, target).float())

    def compute(self) -> dict:
        keep, ids = self._unique()
        n_groups = len(self.group_names)
        nan = float("nan")
        if keep.numel() == 0:
            return {k: torch.tensor(nan) for k in _H36M_KEYS} | {"frames": 0, "per_action": {}}
        diff = _cat(self.diff)[keep].to(torch.float64)
        p_err = _cat(self.p_err)[keep].to(torch.float64) * 1000.0
        err = torch.linalg.vector_norm(diff, dim=-1).mean(-1) * 1000.0
        group = ids["group"]
        if group.min() < 0 or group.max() >= n_groups:
            raise ValueError(f"action ids must lie in [0, {n_groups}); got {group.unique()}")

        vel_seq, vel_w, vel_group = _sequence_velocity_errors(diff, ids["seq"], ids["frame"], group)
        vel_seq = vel_seq * 1000.0
        e_mean, counts = group_mean(err, group, n_groups)
        p_mean, _ = group_mean(p_err, group, n_groups)
        v_mean, v_counts = group_mean(vel_seq, vel_group, n_groups, weight=vel_w)
        present = counts > 0
        v_present = v_counts > 0

        def _avg(x: Tensor, mask: Tensor) -> Tensor:
            return x[mask].mean() if mask.any() else torch.tensor(nan, dtype=torch.float64)

        v_frame = (vel_seq * vel_w).sum() / vel_w.sum() if vel_w.numel() else torch.tensor(nan)
        return {
            "mpjpe": _avg(e_mean, present),
            "p_mpjpe": _avg(p_mean, present),
            "mpjve": _avg(v_mean, v_present),
            "mpjpe_framewise": err.mean(),
            "p_mpjpe_framewise": p_err.mean(),
            "mpjve_framewise": v_frame,
            "frames": int(keep.numel()),
            "per_action": self._group_dict(
                {"mpjpe": e_mean, "p_mpjpe": p_mean, "mpjve": v_mean}, counts
            ),
        }


_H36M_KEYS = ("mpjpe", "p_mpjpe", "mpjve", "mpjpe_framewise", "p_mpjpe_framewise",
              "mpjve_framewise")  # fmt: skip


def _sequence_velocity_errors(
    diff: Tensor, seq: Tensor, frame: Tensor, group: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Mean velocity error per sequence (VideoPose3D weighting).

    ``diff (N, J, 3)`` = pred − target per frame; returns per sequence with ≥ 2 frames:
    ``(mean velocity error (S,), weight = frame count (S,), group id (S,))``.
    """
    order = torch.argsort(seq * (frame.max() + 1) + frame)
    diff, seq, group = diff[order], seq[order], group[order]
    step = torch.linalg.vector_norm(diff[1:] - diff[:-1], dim=-1).mean(-1)  # (N-1,)
    same = seq[1:] == seq[:-1]
    uniq, inverse, counts = torch.unique_consecutive(seq, return_inverse=True, return_counts=True)
    s = uniq.numel()
    tot = torch.zeros(s, dtype=torch.float64, device=diff.device)
    tot.index_add_(0, inverse[1:][same], step[same].to(torch.float64))
    seq_group = torch.zeros(s, dtype=torch.long, device=diff.device)
    seq_group[inverse] = group
    valid = counts >= 2
    mean = tot[valid] / (counts[valid] - 1).to(torch.float64)
    return mean, counts[valid].to(torch.float64), seq_group[valid]


class MPI3DHPMetrics(_FrameMetric):
    """MPI-INF-3DHP PCK@150 mm, AUC and MPJPE per test sequence and pooled over all frames.

    Same ``update`` signature as :class:`H36MMetrics` (metres in). ``compute()`` →::

        {"pck", "auc", "mpjpe"}:         pooled over every scored frame (official "All" row)
        {"*_seqavg"}:                    unweighted mean of the per-sequence values
        "frames":                        number of distinct frames
        "per_sequence": {name: {"pck", "auc", "mpjpe", "frames"}}

    PCK/AUC use the 14 ``pck_joints`` (default ``MPI_PCK_JOINTS``); MPJPE all joints.
    """

    def __init__(
        self,
        group_names: Sequence[str],
        root: int = MPI_INF_3DHP.root,
        zero_root: bool = True,
        pck_joints: Sequence[int] = MPI_PCK_JOINTS,
        threshold_mm: float = PCK_THRESHOLD_MM,
        auc_thresholds_mm: Sequence[float] = AUC_THRESHOLDS_MM,
        **kwargs,
    ) -> None:
        super().__init__(group_names, root, zero_root, **kwargs)
        self.pck_joints = tuple(int(j) for j in pck_joints)
        self.threshold_mm = float(threshold_mm)
        self.auc_thresholds_mm = tuple(float(t) for t in auc_thresholds_mm)
        self.add_state("joint_err", default=[], dist_reduce_fx="cat")

    def _accumulate(self, pred: Tensor, target: Tensor) -> None:
        self.joint_err.append(joint_errors(pred, target) * 1000.0)  # (B, J) mm

    def _scores(self, err: Tensor) -> dict[str, Tensor]:
        return {
            "pck": pck(err, self.threshold_mm, self.pck_joints),
            "auc": auc(err, self.auc_thresholds_mm, self.pck_joints),
            "mpjpe": err.to(torch.float64).mean(),
        }

    def compute(self) -> dict:
        keep, ids = self._unique()
        nan = torch.tensor(float("nan"), dtype=torch.float64)
        if keep.numel() == 0:
            keys = ("pck", "auc", "mpjpe", "pck_seqavg", "auc_seqavg", "mpjpe_seqavg")
            return {k: nan for k in keys} | {"frames": 0, "per_sequence": {}}
        err = _cat(self.joint_err)[keep]
        group = ids["group"]
        per_seq: dict[str, dict[str, float]] = {}
        rows = []
        for g, name in enumerate(self.group_names):  # ≤ a handful of groups: loop is fine
            mask = group == g
            if mask.any():
                sc = self._scores(err[mask])
                rows.append(sc)
                per_seq[name] = {k: float(v) for k, v in sc.items()} | {"frames": int(mask.sum())}
        pooled = self._scores(err)
        seqavg = {f"{k}_seqavg": torch.stack([r[k] for r in rows]).mean() for k in pooled}
        return pooled | seqavg | {"frames": int(keep.numel()), "per_sequence": per_seq}


def flatten_metrics(result: dict, prefix: str = "") -> dict[str, float]:
    """Flatten a ``compute()`` dict for ``LightningModule.log_dict``.

    ``{"mpjpe": x, "per_action": {"Walk": {"mpjpe": y}}}`` → ``{prefix+"mpjpe": x,
    prefix+"mpjpe/Walk": y}`` (floats; the ``frames`` counts are kept as floats too).
    """
    flat: dict[str, float] = {}
    for key, val in result.items():
        if isinstance(val, dict):
            for group, sub in val.items():
                for metric, v in sub.items():
                    flat[f"{prefix}{metric}/{group}"] = float(v)
        else:
            flat[f"{prefix}{key}"] = float(val)
    return flat
