"""LiftingLoss: hand-computed cases for Ls, Lt, Lv and the weighting (paper Eq. 10-12)."""

from __future__ import annotations

import pytest
import torch

from pose3d.loss import LiftingLoss, mpjpe_loss, velocity_loss


def _target() -> torch.Tensor:
    return torch.zeros(1, 3, 2, 3)  # (B=1, T=3, J=2, 3)


def test_mpjpe_hand_value() -> None:
    pred = torch.zeros(1, 1, 2, 3)
    pred[0, 0, 0] = torch.tensor([3.0, 4.0, 0.0])  # error 5 on joint 0, 0 on joint 1
    assert mpjpe_loss(pred, torch.zeros_like(pred)).item() == pytest.approx(2.5)


def test_spatial_and_temporal_terms_by_hand() -> None:
    pred = _target()
    pred[0, 1, 0, 0] = 0.6  # centre frame, joint 0: error 0.6
    pred[0, 0, 1, 2] = 1.2  # frame 0, joint 1: error 1.2
    terms = LiftingLoss(lambda_s=2.0, lambda_t=0.5)(pred, _target())
    # Ls: centre frame (2 joints) = (0.6 + 0) / 2 = 0.3
    assert terms["loss_s"].item() == pytest.approx(0.3)
    # Lt: all 3 frames × 2 joints = (0.6 + 1.2) / 6 = 0.3
    assert terms["loss_t"].item() == pytest.approx(0.3)
    assert terms["loss_v"].item() == 0.0  # λv = 0: not computed
    assert terms["loss"].item() == pytest.approx(2.0 * 0.3 + 0.5 * 0.3)


def test_velocity_term_by_hand() -> None:
    pred = _target()
    pred[0, 2, 0, 0] = 0.4  # last frame, joint 0 moves by 0.4 between frames 1 and 2
    # velocities: step 0→1 all zero; step 1→2 joint 0 error 0.4 → mean over 2 steps × 2 joints
    assert velocity_loss(pred, _target()).item() == pytest.approx(0.1)
    terms = LiftingLoss(lambda_s=0.0, lambda_t=0.0, lambda_v=3.0)(pred, _target())
    assert terms["loss"].item() == pytest.approx(0.3)


def test_center_head_uses_only_the_centre_frame() -> None:
    target = _target()
    target[0, 1, 1] = torch.tensor([0.0, 0.3, 0.4])  # centre frame joint 1 at distance 0.5
    target[0, 0, 0, 0] = 9.0  # far away on a non-centre frame: must not count
    pred = torch.zeros(1, 1, 2, 3)
    terms = LiftingLoss()(pred, target)
    assert terms["loss_s"].item() == pytest.approx(0.25)
    assert terms["loss_t"].item() == 0.0
    assert terms["loss"].item() == pytest.approx(0.25)


def test_shape_mismatch_is_reported() -> None:
    with pytest.raises(ValueError, match="pred"):
        LiftingLoss()(torch.zeros(1, 2, 2, 3), _target())
