"""Heatmap codec: joints ↔ Gaussian heatmaps.

Encoding (:func:`encode_gaussian`, numpy, vectorised over joints):

* ``unbiased=False`` (official HRNet ``generate_target``): the Gaussian is centred on the
  *integer* grid point ``mu = int(x + 0.5)`` (truncation, as the official code), peak 1, drawn
  in a ``(6σ+1)²`` window; weight 0 when that window lies entirely off the map (official
  rule, with its ``br == 0`` off-by-one fixed).
* ``unbiased=True`` (DARK / UDP): same window around the rounded centre but the Gaussian is
  centred on the exact sub-pixel position.

Decoding (:func:`decode_heatmaps`, torch, vectorised over ``(B, J)``, runs on any device):

* ``"standard"``: argmax, then a quarter-pixel step toward the higher neighbour (official
  ``get_final_preds``); score = peak value; coordinates zeroed where the peak is ≤ 0.
* ``"dark"``: DARK (Zhang et al. 2020): Gaussian blur (11×11, zero border) keeping each map's
  maximum, log, then a second-order Taylor step at the argmax (DarkPose finite differences).
* ``"udp"``: the UDP refinement (mmpose ``refine_keypoints_dark_udp``): blur, clip to
  [1e-3, 50], log, Newton step with 1-pixel finite differences. Pair it with UDP geometry
  (``(size - 1)`` scaling, :func:`pose2d.transforms.crop_to_image` with ``use_udp=True``).

Coordinates are in heatmap pixels with pixel centres on integers.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F

from datamodules.skeleton import Skeleton, joint_index_tensor

DecodeMethod = Literal["standard", "dark", "udp"]
DECODE_METHODS: tuple[str, ...] = get_args(DecodeMethod)


def encode_gaussian(
    joints_hm: np.ndarray,
    visible: np.ndarray,
    heatmap_size_wh: tuple[int, int],
    sigma: float = 2.0,
    unbiased: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Joints ``(J, 2)`` (heatmap px) + visibility ``(J,)`` → maps ``(J, h, w)``, weight ``(J,)``.

    Weight = ``visible > 0``, set to 0 when the ``(6σ+1)²`` window is entirely off the map;
    maps of zero-weight joints are all zeros.
    """
    joints_hm = np.asarray(joints_hm, dtype=np.float64)
    w, h = int(heatmap_size_wh[0]), int(heatmap_size_wh[1])
    tmp = sigma * 3.0
    mu = np.trunc(joints_hm + 0.5)  # official int(x + 0.5): truncation toward zero
    ul = np.trunc(mu - tmp)
    br = np.trunc(mu + tmp + 1.0)
    weight = (np.asarray(visible) > 0).astype(np.float32)
    # Window [ul, br) is empty on the map. The official test is ``br < 0``, which keeps weight 1
    # with an all-zero target when br == 0; we zero that case too.
    off = (ul[:, 0] >= w) | (ul[:, 1] >= h) | (br[:, 0] <= 0) | (br[:, 1] <= 0)
    weight[off] = 0.0

    centre = joints_hm if unbiased else mu
    gx = np.arange(w, dtype=np.float64)
    gy = np.arange(h, dtype=np.float64)
    dx2 = (gx[None, :] - centre[:, 0:1]) ** 2  # (J, w)
    dy2 = (gy[None, :] - centre[:, 1:2]) ** 2  # (J, h)
    in_x = (gx[None, :] >= ul[:, 0:1]) & (gx[None, :] < br[:, 0:1])
    in_y = (gy[None, :] >= ul[:, 1:2]) & (gy[None, :] < br[:, 1:2])
    gauss_x = np.where(in_x, np.exp(-dx2 / (2 * sigma**2)), 0.0)
    gauss_y = np.where(in_y, np.exp(-dy2 / (2 * sigma**2)), 0.0)
    # The 2D Gaussian in a square window is separable: (J, h, 1) * (J, 1, w).
    heatmaps = gauss_y[:, :, None] * gauss_x[:, None, :] * (weight > 0)[:, None, None]
    return heatmaps.astype(np.float32), weight


def joints_to_heatmap_coords(
    joints_input: np.ndarray,
    input_size_wh: tuple[int, int],
    heatmap_size_wh: tuple[int, int],
    use_udp: bool = False,
) -> np.ndarray:
    """Input-crop px ``(..., 2)`` → heatmap px: ``/ stride`` or ``(hm - 1) / (in - 1)`` (UDP)."""
    inp = np.asarray(input_size_wh, dtype=np.float64)
    hm = np.asarray(heatmap_size_wh, dtype=np.float64)
    factor = (hm - 1.0) / (inp - 1.0) if use_udp else hm / inp
    return np.asarray(joints_input, dtype=np.float64) * factor


# --- decoding -------------------------------------------------------------------------------------
def get_max_preds(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax of ``(B, J, h, w)`` → integer coords ``(B, J, 2)`` (x, y) and peak ``(B, J)``."""
    b, j, h, w = heatmaps.shape
    maxvals, idx = heatmaps.reshape(b, j, h * w).max(dim=-1)
    coords = torch.stack([idx % w, torch.div(idx, w, rounding_mode="floor")], dim=-1)
    coords = coords.to(heatmaps.dtype) * (maxvals > 0).unsqueeze(-1)
    return coords, maxvals


def _gather(maps: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``maps[b, j, y, x]`` for index tensors ``(B, J)`` → ``(B, J)``."""
    b, j, h, w = maps.shape
    flat = maps.reshape(b, j, h * w)
    return flat.gather(-1, (y * w + x).unsqueeze(-1)).squeeze(-1)


def _gaussian_kernel1d(kernel: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    sigma = 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8  # cv2.getGaussianKernel's default sigma
    x = torch.arange(kernel, dtype=torch.float64) - (kernel - 1) / 2
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return (k / k.sum()).to(device=device, dtype=dtype)


def gaussian_blur(heatmaps: torch.Tensor, kernel: int = 11) -> torch.Tensor:
    """DARK modulation: separable Gaussian blur of ``(B, J, h, w)``, rescaled so each map keeps
    its original maximum.

    Zero border, as the reference (DarkPose / mmpose ``gaussian_blur``: the map is zero-padded
    by ``(kernel - 1) // 2`` before ``cv2.GaussianBlur``), so a peak at the edge is not mirrored
    onto itself.
    """
    b, j, h, w = heatmaps.shape
    pad = (kernel - 1) // 2
    k = _gaussian_kernel1d(kernel, heatmaps.dtype, heatmaps.device)
    x = heatmaps.reshape(b * j, 1, h, w)
    x = F.pad(x, (pad, pad, pad, pad))  # zeros
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    x = F.conv2d(x, k.view(1, 1, -1, 1)).reshape(b, j, h, w)
    orig_max = heatmaps.amax(dim=(-2, -1), keepdim=True)
    new_max = x.amax(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    return x * (orig_max / new_max)


def _newton_step(
    dx: torch.Tensor,
    dy: torch.Tensor,
    dxx: torch.Tensor,
    dxy: torch.Tensor,
    dyy: torch.Tensor,
    eps: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Offset ``-H^-1 g`` for a 2×2 Hessian, elementwise over ``(B, J)``; also returns det≠0."""
    a, d = dxx + eps, dyy + eps
    det = a * d - dxy * dxy
    ok = det != 0
    safe = torch.where(ok, det, torch.ones_like(det))
    off_x = -(d * dx - dxy * dy) / safe
    off_y = -(-dxy * dx + a * dy) / safe
    return off_x, off_y, ok


def _refine_dark(heatmaps: torch.Tensor, coords: torch.Tensor, kernel: int) -> torch.Tensor:
    """DarkPose ``taylor``: steps of 1 for gradients, 2 for second derivatives."""
    b, j, h, w = heatmaps.shape
    logh = torch.log(gaussian_blur(heatmaps, kernel).clamp_min(1e-10))
    px, py = coords[..., 0].long(), coords[..., 1].long()
    inside = (px > 1) & (px < w - 2) & (py > 1) & (py < h - 2)
    cx, cy = px.clamp(2, max(w - 3, 2)), py.clamp(2, max(h - 3, 2))

    def at(ox: int, oy: int) -> torch.Tensor:
        return _gather(logh, (cx + ox).clamp(0, w - 1), (cy + oy).clamp(0, h - 1))

    c = at(0, 0)
    dx = 0.5 * (at(1, 0) - at(-1, 0))
    dy = 0.5 * (at(0, 1) - at(0, -1))
    dxx = 0.25 * (at(2, 0) - 2 * c + at(-2, 0))
    dyy = 0.25 * (at(0, 2) - 2 * c + at(0, -2))
    dxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    off_x, off_y, ok = _newton_step(dx, dy, dxx, dxy, dyy)
    use = (inside & ok).to(coords.dtype)
    return coords + torch.stack([off_x, off_y], dim=-1) * use.unsqueeze(-1)


def _refine_udp(heatmaps: torch.Tensor, coords: torch.Tensor, kernel: int) -> torch.Tensor:
    """mmpose ``refine_keypoints_dark_udp``: edge-padded 1-pixel differences, Hessian + eps·I."""
    b, j, h, w = heatmaps.shape
    logh = torch.log(gaussian_blur(heatmaps, kernel).clamp(1e-3, 50.0))
    logh = F.pad(logh.reshape(b * j, 1, h, w), (1, 1, 1, 1), mode="replicate").reshape(
        b, j, h + 2, w + 2
    )
    cx = coords[..., 0].long().clamp(0, w - 1) + 1
    cy = coords[..., 1].long().clamp(0, h - 1) + 1

    def at(ox: int, oy: int) -> torch.Tensor:
        return _gather(logh, cx + ox, cy + oy)

    i_ = at(0, 0)
    ix1, ix1_ = at(1, 0), at(-1, 0)
    iy1, iy1_ = at(0, 1), at(0, -1)
    dx = 0.5 * (ix1 - ix1_)
    dy = 0.5 * (iy1 - iy1_)
    dxx = ix1 - 2 * i_ + ix1_
    dyy = iy1 - 2 * i_ + iy1_
    dxy = 0.5 * (at(1, 1) - ix1 - iy1 + 2 * i_ - ix1_ - iy1_ + at(-1, -1))
    off_x, off_y, ok = _newton_step(dx, dy, dxx, dxy, dyy, eps=float(np.finfo(np.float32).eps))
    return coords + torch.stack([off_x, off_y], dim=-1) * ok.to(coords.dtype).unsqueeze(-1)


def decode_heatmaps(
    heatmaps: torch.Tensor | np.ndarray, method: DecodeMethod = "standard", blur_kernel: int = 11
) -> tuple[torch.Tensor, torch.Tensor]:
    """Heatmaps ``(B, J, h, w)`` → coords ``(B, J, 2)`` in heatmap px (x, y), maxvals ``(B, J)``.

    ``method``: ``"standard"`` | ``"dark"`` | ``"udp"`` (see module docstring). Numpy input
    gives numpy output. Computation is in float32 at least (safe under bf16/fp16 autocast).
    """
    if method not in DECODE_METHODS:
        raise ValueError(f"unknown decode method {method!r}; choose one of {DECODE_METHODS}")
    is_np = isinstance(heatmaps, np.ndarray)
    hm = torch.from_numpy(heatmaps) if is_np else heatmaps
    hm = hm.detach()
    if hm.dtype not in (torch.float32, torch.float64):
        hm = hm.float()
    b, j, h, w = hm.shape
    coords, maxvals = get_max_preds(hm)
    if method == "standard":
        px, py = coords[..., 0].long(), coords[..., 1].long()
        inside = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
        cx, cy = px.clamp(1, w - 2), py.clamp(1, h - 2)
        sx = torch.sign(_gather(hm, cx + 1, cy) - _gather(hm, cx - 1, cy))
        sy = torch.sign(_gather(hm, cx, cy + 1) - _gather(hm, cx, cy - 1))
        shift = torch.stack([sx, sy], dim=-1) * 0.25 * inside.to(hm.dtype).unsqueeze(-1)
        coords = coords + shift
    elif method == "dark":
        coords = _refine_dark(hm, coords, blur_kernel)
    else:
        coords = _refine_udp(hm, coords, blur_kernel)
    if is_np:
        return coords.numpy(), maxvals.numpy()
    return coords, maxvals


def flip_back(heatmaps: torch.Tensor, skeleton: Skeleton, shift: bool = True) -> torch.Tensor:
    """Heatmaps ``(B, J, h, w)`` of a horizontally flipped input → heatmaps of the original.

    Mirrors along x and swaps left/right joints; ``shift=True`` moves the result one pixel to
    the right (official ``SHIFT_HEATMAP``, for the standard codec; use False with UDP).
    """
    out = heatmaps.flip(-1).index_select(
        1, joint_index_tensor(skeleton.flip_index, heatmaps.device)
    )
    if shift:
        out = torch.cat([out[..., :1], out[..., :-1]], dim=-1)
    return out


def heatmap_size_for(input_size_wh: tuple[int, int], stride: int = 4) -> tuple[int, int]:
    """Heatmap (w, h) for an input (w, h): 192×256 → 48×64."""
    return (math.ceil(input_size_wh[0] / stride), math.ceil(input_size_wh[1] / stride))
