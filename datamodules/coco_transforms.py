"""Top-down training augmentation (official HRNet order and defaults) and the crop warp.

Order: half-body → random scale → random rotation → horizontal flip → affine warp. The flip is
folded into the warp matrix instead of mirroring the whole image: warping a mirrored image with
a mirrored centre equals warping the original with rotation ``-r`` and then mirroring the crop
about ``out_w / 2`` (``(out_w - 1) / 2`` for UDP), and is cheaper.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from datamodules.skeleton import COCO, COCO_UPPER_BODY, Skeleton
from pose2d.transforms import affine_points, get_affine_transform, get_udp_transform

# ImageNet statistics, RGB order: the one definition (training, inference, picture callbacks).
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
IMAGENET_MEAN = np.array(IMAGENET_MEAN_RGB, dtype=np.float32)
IMAGENET_STD = np.array(IMAGENET_STD_RGB, dtype=np.float32)


@dataclass(frozen=True)
class AugmentConfig:
    """Official HRNet COCO defaults (w32_256x192_adam_lr1e-3.yaml)."""

    flip_prob: float = 0.5
    scale_factor: float = 0.35
    rot_factor: float = 45.0
    rot_prob: float = 0.6
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8  # applies when MORE than this many joints are visible
    half_body_scale: float = 1.5


def half_body_box(
    joints: np.ndarray,
    visible: np.ndarray,
    rng: np.random.Generator,
    aspect_ratio: float,
    scale_mult: float = 1.5,
    upper_body: tuple[int, ...] = COCO_UPPER_BODY,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Centre/scale around the upper or lower body (official ``half_body_transform``).

    ``joints`` ``(J, 2)``, ``visible`` ``(J,)``. The upper body wins when ``randn() < 0.5`` (≈69%,
    the official quirk) and has more than 2 visible joints. None if fewer than 2 joints.
    """
    vis = visible > 0
    is_upper = np.zeros(len(joints), dtype=bool)
    is_upper[list(upper_body)] = True
    upper, lower = joints[vis & is_upper], joints[vis & ~is_upper]
    if rng.standard_normal() < 0.5 and len(upper) > 2:
        sel = upper
    else:
        sel = lower if len(lower) > 2 else upper
    if len(sel) < 2:
        return None
    center = sel.mean(axis=0)
    w, h = sel.max(axis=0) - sel.min(axis=0)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    return center, np.array([w, h]) * scale_mult


def sample_augmentation(
    joints: np.ndarray,
    visible: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    aspect_ratio: float,
) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Draw one augmentation → ``(center, scale, rot_deg, flip)`` (official distributions)."""
    if (visible > 0).sum() > cfg.half_body_min_joints and rng.random() < cfg.half_body_prob:
        hb = half_body_box(joints, visible, rng, aspect_ratio, cfg.half_body_scale)
        if hb is not None:
            center, scale = hb
    sf, rf = cfg.scale_factor, cfg.rot_factor
    scale = scale * np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf)
    rot = float(np.clip(rng.standard_normal() * rf, -rf * 2, rf * 2))
    rot = rot if rng.random() <= cfg.rot_prob else 0.0
    flip = bool(rng.random() <= cfg.flip_prob) if cfg.flip_prob > 0 else False
    return center, scale, rot, flip


def crop_matrix(
    center: np.ndarray,
    scale: np.ndarray,
    rot_deg: float,
    flip: bool,
    input_size_wh: tuple[int, int],
    use_udp: bool = False,
) -> np.ndarray:
    """Image → crop ``(2, 3)`` affine including the optional horizontal flip."""
    w = input_size_wh[0]
    if use_udp:
        m = get_udp_transform(center, scale, -rot_deg if flip else rot_deg, input_size_wh)
    else:
        m = get_affine_transform(center, scale, -rot_deg if flip else rot_deg, input_size_wh)
    if flip:
        mirror = np.array([[-1.0, 0.0, (w - 1.0) if use_udp else float(w)], [0.0, 1.0, 0.0]])
        m = mirror[:, :2] @ m + np.concatenate([np.zeros((2, 2)), mirror[:, 2:]], axis=1)
    return m


def warp_sample(
    image: np.ndarray,
    joints: np.ndarray,
    visible: np.ndarray,
    m: np.ndarray,
    input_size_wh: tuple[int, int],
    flip: bool,
    skeleton: Skeleton = COCO,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp a BGR image and its joints into the crop.

    ``image`` ``(H, W, 3)`` uint8 BGR, ``joints`` ``(J, 2)`` image px, ``visible`` ``(J,)`` →
    normalised RGB ``(3, h, w)`` float32, crop joints ``(J, 2)``, visibility ``(J,)`` (left/right
    swapped when flipped).
    """
    crop = cv2.warpAffine(
        image, m.astype(np.float64), (int(input_size_wh[0]), int(input_size_wh[1])),
        flags=cv2.INTER_LINEAR,
    )  # fmt: skip
    img = normalize_image(crop)
    pts = affine_points(joints.astype(np.float64), m)
    vis = np.asarray(visible, dtype=np.float32)
    if flip:
        idx = list(skeleton.flip_index)
        pts, vis = pts[idx], vis[idx]
    return img, pts, vis


# uint8 value → normalised float per RGB channel: a table lookup (cv2.LUT on contiguous planes)
# is ~10x faster than float arithmetic on the interleaved image.
_NORM_LUT = ((np.arange(256, dtype=np.float32)[:, None] / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).T
_NORM_LUT_ROWS = [np.ascontiguousarray(_NORM_LUT[c][None]) for c in range(3)]  # (1, 256) each


def normalize_image(crop_bgr: np.ndarray) -> np.ndarray:
    """BGR uint8 ``(h, w, 3)`` → ImageNet-normalised RGB float32 ``(3, h, w)``."""
    planes = cv2.split(crop_bgr)  # B, G, R
    return np.stack([cv2.LUT(planes[2 - c], _NORM_LUT_ROWS[c]) for c in range(3)])
