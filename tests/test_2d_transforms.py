"""Crop geometry: pixel-unit box → centre/scale, official three-point warp, UDP warp."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from pose2d.transforms import (
    affine_points,
    box_to_center_scale,
    crop_to_image,
    get_affine_transform,
    get_udp_transform,
    invert_affine,
)


def test_box_to_center_scale_hand_values():
    # Wide box 100x50 at (10, 20): height grows to 100/0.75 = 133.33, then x1.25.
    c, s = box_to_center_scale(np.array([10.0, 20.0, 100.0, 50.0]))
    np.testing.assert_allclose(c, [60.0, 45.0])
    np.testing.assert_allclose(s, [125.0, 100.0 / 0.75 * 1.25])
    # Tall box 30x200: width grows to 150.
    c, s = box_to_center_scale(np.array([[0.0, 0.0, 30.0, 200.0]]), padding=1.0)
    np.testing.assert_allclose(c, [[15.0, 100.0]])
    np.testing.assert_allclose(s, [[150.0, 200.0]])


def test_pixel_std_convention_matches_official_formula():
    # Official: scale = (w, h) / 200 * 1.25 after fixing the aspect; ours is that times 200.
    box = np.array([5.0, 7.0, 60.0, 90.0])
    _, s = box_to_center_scale(box)
    official = np.array([90 * 0.75, 90.0]) / 200.0 * 1.25
    np.testing.assert_allclose(s, official * 200.0)


@pytest.mark.parametrize("rot", [0.0, 30.0, -75.0])
def test_affine_round_trip_and_cv2_agreement(rot):
    center, scale = np.array([150.0, 120.0]), np.array([96.0, 128.0])
    m = get_affine_transform(center, scale, rot, (192, 256))
    m_inv = get_affine_transform(center, scale, rot, (192, 256), inv=True)
    pts = np.random.default_rng(0).uniform(0, 300, size=(17, 2))
    np.testing.assert_allclose(affine_points(affine_points(pts, m), m_inv), pts, atol=1e-9)
    np.testing.assert_allclose(invert_affine(m), m_inv, atol=1e-9)
    # The official code builds the same matrix with cv2.getAffineTransform (float32).
    m_cv = _official_cv2(center, scale, rot, (192, 256))
    np.testing.assert_allclose(m, m_cv, rtol=1e-4, atol=1e-3)


def _official_cv2(center, scale, rot, out):
    """Independent re-statement of the official construction, solved by OpenCV."""
    r = np.deg2rad(rot)
    src_dir = np.array([0 * np.cos(r) + scale[0] * 0.5 * np.sin(r), -scale[0] * 0.5 * np.cos(r)])
    src = np.float32([center, center + src_dir, center + src_dir + [src_dir[1], -src_dir[0]]])
    d0 = np.array([out[0] * 0.5, out[1] * 0.5])
    d1 = d0 + [0, -out[0] * 0.5]
    dst = np.float32([d0, d1, d1 + [d1[1] - d0[1], -(d1[0] - d0[0])]])
    return cv2.getAffineTransform(src, dst)


def test_box_maps_to_full_output_frame():
    box = np.array([40.0, 30.0, 75.0, 100.0])  # already 0.75 aspect
    c, s = box_to_center_scale(box, padding=1.0)
    m = get_affine_transform(c, s, 0.0, (192, 256))
    corners = np.array([[40.0, 30.0], [115.0, 130.0], [40.0, 130.0], [115.0, 30.0]])
    np.testing.assert_allclose(
        affine_points(corners, m), [[0, 0], [192, 256], [0, 256], [192, 0]], atol=1e-9
    )
    # UDP maps the same box corners onto the first and last pixel centres.
    mu = get_udp_transform(c, s, 0.0, (192, 256))
    np.testing.assert_allclose(affine_points(corners[:2], mu), [[0, 0], [191, 255]], atol=1e-9)


def test_rotation_rotates_about_centre():
    c, s = np.array([100.0, 100.0]), np.array([64.0, 64.0])
    m = get_affine_transform(c, s, 90.0, (64, 64))
    # A point straight above the centre (image "up") must land 90 degrees away in the crop.
    out = affine_points(np.array([[100.0, 80.0]]), m)[0]
    assert np.linalg.norm(out - [32.0, 32.0]) == pytest.approx(20.0)
    assert abs(out[1] - 32.0) < 1e-9 and abs(abs(out[0] - 32.0) - 20.0) < 1e-9
    mu = get_udp_transform(c, s, 90.0, (65, 65))
    out_u = affine_points(np.array([[100.0, 80.0]]), mu)[0]
    np.testing.assert_allclose(np.sign(out_u - 32.0), np.sign(out - 32.0))


@pytest.mark.parametrize("use_udp", [False, True])
def test_crop_to_image_inverts_warp_numpy_and_torch(use_udp):
    rng = np.random.default_rng(1)
    centers = rng.uniform(50, 200, size=(3, 2))
    scales = np.stack([np.full(3, 90.0), np.full(3, 120.0)], -1)
    pts = rng.uniform(0, 300, size=(3, 5, 2))
    hm = (48, 64)
    fwd = get_udp_transform if use_udp else get_affine_transform
    in_hm = np.stack([affine_points(pts[i], fwd(centers[i], scales[i], 0.0, hm)) for i in range(3)])
    back = crop_to_image(in_hm, centers, scales, hm, use_udp=use_udp)
    np.testing.assert_allclose(back, pts, atol=1e-9)
    back_t = crop_to_image(torch.from_numpy(in_hm), centers, scales, hm, use_udp=use_udp)
    np.testing.assert_allclose(back_t.numpy(), pts, atol=1e-9)
