"""Top-down crop geometry: person box → (centre, scale) → affine warp to the network input.

Convention (one for the whole repository): **pixel units**. ``scale`` is the ``(w, h)`` of the
crop in *image pixels*, padding included. The official HRNet code divides by ``pixel_std=200``;
its ``scale`` is ours divided by 200 (``scale_ours = scale_official * 200``), nothing else
changes.

Two warp flavours:

* standard (official HRNet ``get_affine_transform``): the crop centre maps to
  ``output_size / 2`` and the crop *width* maps to the output width (three-point affine);
  only ``scale[0]`` is used, the aspect ratio is fixed beforehand by :func:`box_to_center_scale`.
* UDP (unbiased data processing, Huang et al. 2020): the centre maps to ``(output_size - 1) / 2``
  and ``scale`` maps to ``output_size - 1`` per axis, so pixel centres line up exactly and flipping
  commutes with the warp.

All functions are pure numpy; shapes are given as ``(..., 2)`` for point arrays.
"""

from __future__ import annotations

import numpy as np

ASPECT_RATIO = 192.0 / 256.0  # w / h of the network input (256x192 and 384x288 alike)
PADDING = 1.25  # the official box enlargement


def box_to_center_scale(
    box_xywh: np.ndarray, aspect_ratio: float = ASPECT_RATIO, padding: float = PADDING
) -> tuple[np.ndarray, np.ndarray]:
    """Person box ``(..., 4)`` as ``(x, y, w, h)`` → centre ``(..., 2)``, scale ``(..., 2)`` (px).

    The short side is enlarged until ``w / h == aspect_ratio`` and both sides are multiplied by
    ``padding`` (official ``_xywh2cs`` without the ``/ 200``).
    """
    box = np.asarray(box_xywh, dtype=np.float64)
    x, y, w, h = (box[..., i] for i in range(4))
    center = np.stack([x + w * 0.5, y + h * 0.5], axis=-1)
    w_fit = np.where(w > aspect_ratio * h, w, h * aspect_ratio)
    h_fit = np.where(w > aspect_ratio * h, w / aspect_ratio, h)
    scale = np.stack([w_fit, h_fit], axis=-1) * padding
    return center, scale


def _rotate(pt: np.ndarray, rot_rad: float) -> np.ndarray:
    sn, cs = np.sin(rot_rad), np.cos(rot_rad)
    return np.array([pt[0] * cs - pt[1] * sn, pt[0] * sn + pt[1] * cs])


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a - b
    return b + np.array([-d[1], d[0]])


def _affine_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) affine taking three ``src`` points to ``dst`` (a float64 cv2.getAffineTransform)."""
    a = np.concatenate([src, np.ones((3, 1))], axis=1)  # (3, 3)
    return np.linalg.solve(a, dst).T  # (2, 3)


def get_affine_transform(
    center: np.ndarray,
    scale: np.ndarray,
    rot_deg: float,
    output_size_wh: tuple[int, int] | np.ndarray,
    *,
    shift: tuple[float, float] = (0.0, 0.0),
    inv: bool = False,
) -> np.ndarray:
    """Official HRNet crop warp (image → output, or output → image with ``inv=True``): ``(2, 3)``.

    ``center`` (2,), ``scale`` (2,) in image px, ``rot_deg`` counter-clockwise in the image
    (the crop is taken from a box rotated by ``rot_deg``), ``output_size_wh`` = (w, h).
    ``shift``/``inv`` are keyword-only (the official positional order has ``shift`` before
    ``inv``, an easy slip). Built from three point pairs exactly like the official code (solved
    in float64 instead of ``cv2.getAffineTransform``'s float32: round trips exact to ~1e-12).
    """
    center = np.asarray(center, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    shift = np.asarray(shift, dtype=np.float64)
    dst_w, dst_h = float(output_size_wh[0]), float(output_size_wh[1])
    src_w = scale[0]
    rot_rad = np.pi * rot_deg / 180.0
    src_dir = _rotate(np.array([0.0, src_w * -0.5]), rot_rad)
    dst_dir = np.array([0.0, dst_w * -0.5])

    src = np.zeros((3, 2))
    dst = np.zeros((3, 2))
    src[0] = center + scale * shift
    src[1] = center + src_dir + scale * shift
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = dst[0] + dst_dir
    src[2] = _third_point(src[0], src[1])
    dst[2] = _third_point(dst[0], dst[1])
    return _affine_from_points(dst, src) if inv else _affine_from_points(src, dst)


def get_udp_transform(
    center: np.ndarray,
    scale: np.ndarray,
    rot_deg: float,
    output_size_wh: tuple[int, int] | np.ndarray,
    *,
    inv: bool = False,
) -> np.ndarray:
    """UDP warp ``(2, 3)``: ``x_out = R(-rot) (x - c) * (out - 1) / scale + (out - 1) / 2``.

    Same rotation direction as :func:`get_affine_transform` so both flavours share augmentation
    code; per-axis scale factors (unlike the official warp, which uses ``scale[0]`` only).
    """
    center = np.asarray(center, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    out = np.asarray(output_size_wh, dtype=np.float64) - 1.0
    rot_rad = np.pi * rot_deg / 180.0
    cs, sn = np.cos(rot_rad), np.sin(rot_rad)
    rot_inv = np.array([[cs, sn], [-sn, cs]])  # R(-rot)
    lin = np.diag(out / scale) @ rot_inv
    m = np.concatenate([lin, (out / 2.0 - lin @ center)[:, None]], axis=1)
    return invert_affine(m) if inv else m


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a ``(2, 3)`` affine."""
    lin_inv = np.linalg.inv(m[:, :2])
    return np.concatenate([lin_inv, (-lin_inv @ m[:, 2])[:, None]], axis=1)


def affine_points(pts: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply a ``(2, 3)`` affine to points ``(..., 2)`` → ``(..., 2)``."""
    pts = np.asarray(pts)
    m = np.asarray(m, dtype=pts.dtype if pts.dtype.kind == "f" else np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def crop_to_image(
    coords: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    output_size_wh: tuple[int, int] | np.ndarray,
    use_udp: bool = False,
) -> np.ndarray:
    """Batched inverse warp without rotation (test time): crop/heatmap px → image px.

    ``coords`` ``(B, J, 2)`` in the pixel grid of size ``output_size_wh`` (the heatmap for
    decoded predictions), ``center``/``scale`` ``(B, 2)``. Standard: ``x = (u - out/2) * scale_w /
    out_w + c`` on both axes (official ``transform_preds``, width factor only); UDP: per-axis
    ``(out - 1)`` scaling. Works for numpy arrays and torch tensors.
    """
    out = np.asarray(output_size_wh, dtype=np.float64)
    if hasattr(coords, "new_tensor"):  # torch: keep device/dtype
        out_t = coords.new_tensor(out)
        center = coords.new_tensor(center) if not hasattr(center, "new_tensor") else center
        scale = coords.new_tensor(scale) if not hasattr(scale, "new_tensor") else scale
        center, scale = center.to(coords.dtype), scale.to(coords.dtype)
    else:
        out_t = out
        center, scale = np.asarray(center, np.float64), np.asarray(scale, np.float64)
    if use_udp:
        factor = scale / (out_t - 1.0)  # (B, 2)
        return (coords - (out_t - 1.0) / 2.0) * factor[:, None, :] + center[:, None, :]
    factor = scale[:, 0:1] / out_t[0]  # (B, 1): width factor for both axes, as official
    return (coords - out_t / 2.0) * factor[:, None, :] + center[:, None, :]
