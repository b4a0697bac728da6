"""Heatmap codec: official Gaussian targets, standard / DARK / UDP decoding, flip-back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.skeleton import COCO
from pose2d.heatmaps import decode_heatmaps, encode_gaussian, flip_back, get_max_preds

HM = (48, 64)  # (w, h)


def test_encode_hand_values_and_window():
    hm, w = encode_gaussian(np.array([[10.4, 20.6]]), np.array([2]), HM, sigma=2.0)
    assert hm.shape == (1, 64, 48) and hm.dtype == np.float32 and w.tolist() == [1.0]
    # mu = int(x + 0.5) = (10, 21): peak 1 there, exp(-1/8) one pixel away, 0 outside 3 sigma.
    assert hm[0, 21, 10] == pytest.approx(1.0)
    assert hm[0, 21, 11] == pytest.approx(np.exp(-1 / 8))
    assert hm[0, 22, 11] == pytest.approx(np.exp(-2 / 8))
    assert hm[0, 21, 16] == pytest.approx(np.exp(-36 / 8))
    assert hm[0, 21, 17] == 0.0 and hm[0, 28, 10] == 0.0
    assert (hm[0] > 0).sum() == 13 * 13


def test_weight_zero_for_invisible_and_off_map_joints():
    joints = np.array([[5.0, 5.0], [5.0, 5.0], [-7.6, 10.0], [-6.0, 10.0], [54.0, 3.0], [10, 70.1]])
    vis = np.array([1, 0, 1, 1, 1, 1])
    hm, w = encode_gaussian(joints, vis, HM)
    # invisible -> 0; x=-7.6 -> mu=-7, window [-13, 0) entirely off -> 0; x=-6 keeps column 0;
    # (the official code would keep weight 1 with an empty map for -7.6: br == 0 there);
    # x=54 -> window starts at 48 = w -> off; y=70.1 -> starts at 64 = h -> off.
    np.testing.assert_array_equal(w, [1, 0, 0, 1, 0, 0])
    assert hm[1].max() == 0 and hm[2].max() == 0 and hm[4].max() == 0
    # x=-6: mu = trunc(-5.5) = -5 (official truncation), so column 0 is 5 px from the centre.
    assert hm[3, 10, 0] == pytest.approx(np.exp(-25 / 8))


@pytest.mark.parametrize("method", ["standard", "dark", "udp"])
def test_integer_joints_round_trip_exactly(method):
    rng = np.random.default_rng(0)
    # Away from the border: DARK's blur sees a truncated Gaussian against the zero border there.
    joints = rng.integers(8, [40, 56], size=(17, 2)).astype(np.float64)
    hm, _ = encode_gaussian(joints, np.ones(17), HM)
    coords, maxvals = decode_heatmaps(torch.from_numpy(hm)[None], method=method)
    np.testing.assert_allclose(coords[0].numpy(), joints, atol=1e-4)
    np.testing.assert_allclose(maxvals.numpy(), 1.0, atol=1e-6)


def test_standard_decode_within_half_pixel_of_subpixel_joints():
    rng = np.random.default_rng(1)
    joints = rng.uniform(3, [44, 60], size=(200, 2))
    hm, _ = encode_gaussian(joints, np.ones(200), HM)
    coords, _ = decode_heatmaps(hm[None])  # numpy in -> numpy out
    assert isinstance(coords, np.ndarray)
    err = np.abs(coords[0] - joints)
    assert err.max() <= 0.5 + 1e-9
    # The integer-grid target loses the sub-pixel part: mean error ~0.25 px per axis.
    assert 0.15 < err.mean() < 0.35


@pytest.mark.parametrize("method", ["dark", "udp"])
def test_refined_decoding_recovers_subpixel_gaussians(method):
    rng = np.random.default_rng(2)
    joints = rng.uniform(8, [40, 56], size=(200, 2))
    hm, _ = encode_gaussian(joints, np.ones(200), HM, unbiased=True)
    coords, _ = decode_heatmaps(torch.from_numpy(hm)[None], method=method)
    err = np.abs(coords[0].numpy() - joints)
    std_err = np.abs(decode_heatmaps(hm[None], "standard")[0][0] - joints)
    assert err.max() < 0.01, err.max()  # measured: dark 4e-4, udp 4e-5
    assert err.mean() < 0.3 * std_err.mean()


def test_standard_quarter_shift_direction_and_border_rule():
    hm = torch.zeros(1, 3, 10, 10)
    hm[0, 0, 5, 5], hm[0, 0, 5, 6], hm[0, 0, 4, 5] = 1.0, 0.5, 0.2  # right and up
    hm[0, 1, 5, 1], hm[0, 1, 5, 2] = 1.0, 0.5  # px == 1: official rule skips the shift
    hm[0, 2] = -1.0  # no positive peak: coordinates zeroed
    coords, maxvals = decode_heatmaps(hm)
    assert coords[0, 0].tolist() == [5.25, 4.75]
    assert coords[0, 1].tolist() == [1.0, 5.0]
    assert coords[0, 2].tolist() == [0.0, 0.0] and maxvals[0, 2] == -1.0


def test_decode_is_batched_and_keeps_dtype_under_half_input():
    rng = np.random.default_rng(3)
    joints = rng.integers(8, [40, 56], size=(4, 17, 2)).astype(np.float64)
    hms = np.stack([encode_gaussian(j, np.ones(17), HM)[0] for j in joints])
    coords, maxvals = decode_heatmaps(torch.from_numpy(hms).to(torch.bfloat16), "dark")
    assert coords.shape == (4, 17, 2) and maxvals.shape == (4, 17)
    assert coords.dtype == torch.float32
    np.testing.assert_allclose(coords.numpy(), joints, atol=0.05)


def test_get_max_preds_matches_numpy_argmax():
    hm = torch.rand(2, 17, 64, 48)
    coords, maxvals = get_max_preds(hm)
    flat = hm.reshape(2, 17, -1).numpy()
    idx = flat.argmax(-1)
    np.testing.assert_array_equal(coords[..., 0].numpy(), idx % 48)
    np.testing.assert_array_equal(coords[..., 1].numpy(), idx // 48)
    np.testing.assert_allclose(maxvals.numpy(), flat.max(-1))


def test_flip_back_mirrors_and_swaps_pairs():
    joints = np.random.default_rng(4).integers(4, [40, 60], size=(17, 2)).astype(np.float64)
    hm, _ = encode_gaussian(joints, np.ones(17), HM)
    flipped_joints = joints[list(COCO.flip_index)].copy()
    flipped_joints[:, 0] = HM[0] - 1 - flipped_joints[:, 0]
    hm_flipped, _ = encode_gaussian(flipped_joints, np.ones(17), HM)  # "network on flipped input"
    back = flip_back(torch.from_numpy(hm_flipped)[None], COCO, shift=False)
    np.testing.assert_allclose(back[0].numpy(), hm)
    shifted = flip_back(torch.from_numpy(hm_flipped)[None], COCO, shift=True)
    coords, _ = get_max_preds(shifted)
    np.testing.assert_allclose(coords[0, :, 0].numpy(), joints[:, 0] + 1)


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="dark"):
        decode_heatmaps(torch.zeros(1, 1, 4, 4), method="argmax")


def test_dark_blur_matches_the_reference_zero_border():
    """DarkPose/mmpose ``gaussian_blur``: zero-pad by (k-1)//2, cv2.GaussianBlur, crop, restore
    the max. A peak at the edge must not be mirrored onto itself (reflect padding differed by 0.6
    of the peak here)."""
    import cv2

    from pose2d.heatmaps import gaussian_blur

    rng = np.random.default_rng(3)
    hm = rng.random((3, 64, 48)).astype(np.float32)
    yy, xx = np.mgrid[:64, :48]
    hm[0] = np.exp(-((xx - 1.3) ** 2 + (yy - 30) ** 2) / 8)  # peak 1.3 px from the left edge
    b = 5
    ref = np.empty_like(hm)
    for k in range(3):
        padded = cv2.GaussianBlur(np.pad(hm[k], b), (11, 11), 0)[b:-b, b:-b]
        ref[k] = padded * hm[k].max() / padded.max()
    ours = gaussian_blur(torch.from_numpy(hm)[None])[0].numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5)
