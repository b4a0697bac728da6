"""Joint layouts: the single source of truth for joint names, order, symmetry and conversions.

No other module hard-codes a joint index; everything asks a :class:`Skeleton` (``COCO``, ``H36M``,
``MPI_INF_3DHP``) or one of the conversion functions below.

Shapes: keypoint arrays are ``(..., J, C)`` with ``C`` = 2 (x, y), 3 (x, y, z) or (x, y, score).
Functions accept numpy arrays and torch tensors alike and return the same type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

ArrayLike = Any  # np.ndarray | torch.Tensor


@dataclass(frozen=True)
class Skeleton:
    """A joint layout: names, parents (-1 = root), left/right index lists and drawing limbs."""

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    limbs: tuple[tuple[int, int], ...]
    root: int
    flip_index: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        assert len(self.parents) == n, "one parent per joint"
        assert len(self.left) == len(self.right), "left/right lists must pair up"
        perm = list(range(n))
        for a, b in zip(self.left, self.right, strict=True):
            perm[a], perm[b] = b, a
        object.__setattr__(self, "flip_index", tuple(perm))

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def flip_pairs(self) -> tuple[tuple[int, int], ...]:
        return tuple(zip(self.left, self.right, strict=True))

    def index(self, name: str) -> int:
        return self.joint_names.index(name)

    def indices(self, *names: str) -> list[int]:
        return [self.index(n) for n in names]


def _limbs_from_parents(parents: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    return tuple((p, j) for j, p in enumerate(parents) if p >= 0)


# --- COCO-17 -----------------------------------------------------------------------------------
COCO = Skeleton(
    name="coco",
    joint_names=(
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),  # fmt: skip
    # COCO has no kinematic tree; parents here follow the drawing skeleton (nose is the root).
    parents=(-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    left=(1, 3, 5, 7, 9, 11, 13, 15),
    right=(2, 4, 6, 8, 10, 12, 14, 16),
    # The 19 limbs of the COCO annotation file's "skeleton" field (converted to 0-based).
    limbs=(
        (15, 13),
        (13, 11),
        (16, 14),
        (14, 12),
        (11, 12),
        (5, 11),
        (6, 12),
        (5, 6),
        (5, 7),
        (6, 8),
        (7, 9),
        (8, 10),
        (1, 2),
        (0, 1),
        (0, 2),
        (1, 3),
        (2, 4),
        (3, 5),
        (4, 6),
    ),  # fmt: skip
    root=0,
)
COCO_OKS_SIGMAS = np.array(
    [.026, .025, .025, .035, .035, .079, .079, .072, .072, .062, .062,
     .107, .107, .087, .087, .089, .089],
    dtype=np.float64,
)  # fmt: skip
# Joints counted as "upper body" for the half-body augmentation (official HRNet: indices 0-10).
COCO_UPPER_BODY = tuple(range(11))
COCO_LOWER_BODY = tuple(range(11, 17))

# --- Human3.6M-17 (VideoPose3D order) -----------------------------------------------------------
_H36M_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
H36M = Skeleton(
    name="h36m",
    joint_names=(
        "pelvis",
        "right_hip",
        "right_knee",
        "right_foot",
        "left_hip",
        "left_knee",
        "left_foot",
        "spine",
        "thorax",
        "neck_nose",
        "head",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
    ),  # fmt: skip
    parents=_H36M_PARENTS,
    left=(4, 5, 6, 11, 12, 13),
    right=(1, 2, 3, 14, 15, 16),
    limbs=_limbs_from_parents(_H36M_PARENTS),
    root=0,
)
# The Human3.6M mocap files hold 32 joints; these 15 are static or duplicated and are dropped.
H36M32_DROPPED = (4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29, 30, 31)
H36M32_KEPT = tuple(j for j in range(32) if j not in H36M32_DROPPED)
H36M_ACTIONS = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing", "Purchases",
    "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking", "WalkTogether",
)  # fmt: skip


def h36m_action_name(key: str) -> str:
    """Merge sub-actions: ``"Directions 1"`` → ``"Directions"`` (the action-wise protocol)."""
    return key.split(" ")[0]


# --- MPI-INF-3DHP-17 (order of the public npz files) ---------------------------------------------
_MPI_PARENTS = (16, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, -1, 14, 1)
MPI_INF_3DHP = Skeleton(
    name="mpi_inf_3dhp",
    joint_names=(
        "head_top",
        "neck",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_hip",
        "right_knee",
        "right_ankle",
        "left_hip",
        "left_knee",
        "left_ankle",
        "pelvis",
        "spine",
        "head",
    ),  # fmt: skip
    parents=_MPI_PARENTS,
    left=(5, 6, 7, 11, 12, 13),
    right=(2, 3, 4, 8, 9, 10),
    limbs=_limbs_from_parents(_MPI_PARENTS),
    root=14,
)
# The 14 joints scored by the 3DHP PCK/AUC (pelvis, spine and head excluded).
MPI_PCK_JOINTS = tuple(
    j for j in range(17) if MPI_INF_3DHP.joint_names[j] not in ("pelvis", "spine", "head")
)

SKELETONS = {s.name: s for s in (COCO, H36M, MPI_INF_3DHP)}


def get_skeleton(name: str) -> Skeleton:
    try:
        return SKELETONS[name]
    except KeyError:
        raise ValueError(f"unknown joint layout {name!r}; known: {sorted(SKELETONS)}") from None


# --- Conversions ----------------------------------------------------------------------------------
def _is_torch(x: ArrayLike) -> bool:
    return type(x).__module__.startswith("torch")


@lru_cache(maxsize=64)
def joint_index_tensor(index: tuple[int, ...], device: Any) -> Any:
    """A joint permutation/selection as an int64 tensor on ``device``, built once per device.

    Hot paths (flip test-time augmentation, conversions) call this every batch; re-building the
    tensor would be a host→device copy (a stream sync on CUDA) each time. Made outside inference
    mode so autograd can use it later. Read-only: do not modify the returned tensor.
    """
    import torch

    with torch.inference_mode(False):
        return torch.as_tensor(index, dtype=torch.long, device=device)


def _take(x: ArrayLike, index: tuple[int, ...]) -> ArrayLike:
    """Select joints along axis -2 for numpy or torch."""
    if _is_torch(x):
        return x.index_select(-2, joint_index_tensor(tuple(index), x.device))
    return np.take(x, index, axis=-2)


# 3DHP ↔ H36M is a permutation: head_top ↔ head, head ↔ neck_nose, neck ↔ thorax.
H36M_FROM_MPI = tuple(
    MPI_INF_3DHP.index(n)
    for n in (
        "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
        "left_ankle", "spine", "neck", "head", "head_top", "left_shoulder", "left_elbow",
        "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
    )
)  # fmt: skip
MPI_FROM_H36M = tuple(int(i) for i in np.argsort(H36M_FROM_MPI))


def mpi_to_h36m(x: ArrayLike) -> ArrayLike:
    """3DHP-17 ``(..., 17, C)`` → H36M-17 ``(..., 17, C)`` (exact permutation)."""
    return _take(x, H36M_FROM_MPI)


def h36m_to_mpi(x: ArrayLike) -> ArrayLike:
    """H36M-17 ``(..., 17, C)`` → 3DHP-17 ``(..., 17, C)``; inverse of :func:`mpi_to_h36m`."""
    return _take(x, MPI_FROM_H36M)


def _coco_to_h36m_matrix() -> np.ndarray:
    """``W`` with ``h36m = W @ coco`` (17×17), built from joint names.

    Reading (the common one, as in MotionBERT's ``coco2h36m``): pelvis = mid-hips,
    thorax = mid-shoulders, spine = midpoint of pelvis and thorax, neck/nose = nose,
    head = mid-eyes; limbs map one to one.
    """
    c, h = COCO.index, H36M.index
    w = np.zeros((17, 17))
    one_to_one = {
        "right_hip": "right_hip", "right_knee": "right_knee", "right_foot": "right_ankle",
        "left_hip": "left_hip", "left_knee": "left_knee", "left_foot": "left_ankle",
        "neck_nose": "nose", "left_shoulder": "left_shoulder", "left_elbow": "left_elbow",
        "left_wrist": "left_wrist", "right_shoulder": "right_shoulder",
        "right_elbow": "right_elbow", "right_wrist": "right_wrist",
    }  # fmt: skip
    for hn, cn in one_to_one.items():
        w[h(hn), c(cn)] = 1.0
    w[h("pelvis"), [c("left_hip"), c("right_hip")]] = 0.5
    w[h("thorax"), [c("left_shoulder"), c("right_shoulder")]] = 0.5
    w[h("spine")] = 0.5 * (w[h("pelvis")] + w[h("thorax")])
    w[h("head"), [c("left_eye"), c("right_eye")]] = 0.5
    return w


COCO_TO_H36M = _coco_to_h36m_matrix()


def coco_to_h36m(x: ArrayLike) -> ArrayLike:
    """COCO-17 ``(..., 17, 2|3)`` → H36M-17 ``(..., 17, 2|3)``.

    With a third channel it is read as a confidence: a joint built from several COCO joints
    gets the *minimum* of their scores (a midpoint is only as reliable as its worst end).
    """
    torch_in = _is_torch(x)
    if torch_in:
        import torch

        w = torch.as_tensor(COCO_TO_H36M, dtype=x.dtype, device=x.device)
        xy = torch.einsum("hc,...cd->...hd", w, x[..., :2])
        if x.shape[-1] == 2:
            return xy
        score = x[..., 2]
        mask = torch.as_tensor(COCO_TO_H36M > 0, device=x.device)
        big = torch.finfo(x.dtype).max
        conf = torch.where(mask, score.unsqueeze(-2), torch.full_like(mask, big, dtype=x.dtype))
        return torch.cat([xy, conf.amin(-1, keepdim=True)], dim=-1)
    x = np.asarray(x)
    xy = np.einsum("hc,...cd->...hd", COCO_TO_H36M, x[..., :2]).astype(x.dtype, copy=False)
    if x.shape[-1] == 2:
        return xy
    score = x[..., None, :, 2]  # (..., 1, 17)
    conf = np.where(COCO_TO_H36M > 0, score, np.inf).min(-1)
    return np.concatenate([xy, conf[..., None].astype(x.dtype)], axis=-1)


def flip_joints(x: ArrayLike, skeleton: Skeleton) -> ArrayLike:
    """Swap left and right joints along axis -2 (an involution)."""
    return _take(x, skeleton.flip_index)


def flip_pose(x: ArrayLike, skeleton: Skeleton, width: float | None = None) -> ArrayLike:
    """Mirror a pose horizontally and swap left/right joints (an involution).

    ``x``: ``(..., J, C)``. With ``width=None`` the x axis is centred (normalised screen or
    camera coordinates) and x → −x; with a pixel ``width`` x → width − 1 − x. Other channels
    (y, z, score) are unchanged.
    """
    out = flip_joints(x, skeleton)
    out = out.clone() if _is_torch(out) else np.array(out, copy=True)
    out[..., 0] = -out[..., 0] if width is None else (width - 1) - out[..., 0]
    return out
