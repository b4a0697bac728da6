"""3D metrics: pure functions against hand-computed values and a numpy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from datamodules.skeleton import MPI_INF_3DHP, MPI_PCK_JOINTS
from pose3d.metrics import (
    AUC_THRESHOLDS_MM,
    auc,
    first_occurrence,
    joint_errors,
    mpjpe,
    mpjpe_per_frame,
    mpjve,
    n_mpjpe,
    p_mpjpe,
    p_mpjpe_per_frame,
    pck,
    procrustes_align,
)


def _random_rotation(gen: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _poses(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 17, 3, generator=gen, dtype=torch.float64) * 0.3


def _numpy_p_mpjpe(pred: np.ndarray, target: np.ndarray, reflection_fix: bool = True) -> np.ndarray:
    """Plain per-frame Procrustes reference (one frame at a time)."""
    out = []
    for p, t in zip(pred, target, strict=True):
        mu_t, mu_p = t.mean(0), p.mean(0)
        t0, p0 = t - mu_t, p - mu_p
        nt, np_ = np.linalg.norm(t0), np.linalg.norm(p0)
        t0, p0 = t0 / nt, p0 / np_
        u, s, vt = np.linalg.svd(t0.T @ p0)
        v = vt.T
        r = v @ u.T
        if reflection_fix and np.linalg.det(r) < 0:
            v[:, -1] *= -1
            s[-1] *= -1
            r = v @ u.T
        a = s.sum() * nt / np_
        aligned = a * p @ r + (mu_t - a * mu_p @ r)
        out.append(np.linalg.norm(aligned - t, axis=-1).mean())
    return np.array(out)


def test_mpjpe_hand_offset() -> None:
    target = _poses(4)
    pred = target + torch.tensor([0.003, 0.004, 0.0], dtype=torch.float64)
    assert mpjpe(pred, target).item() == pytest.approx(0.005)
    assert mpjpe_per_frame(pred, target).shape == (4,)
    assert joint_errors(pred, target).shape == (4, 17)


def test_similarity_copy_has_zero_p_mpjpe_but_positive_mpjpe() -> None:
    gen = torch.Generator().manual_seed(1)
    target = _poses(6, seed=1)
    pred = 2.5 * target @ _random_rotation(gen) + torch.tensor(
        [0.1, -0.2, 3.0], dtype=torch.float64
    )
    assert mpjpe(pred, target).item() > 0.1
    assert p_mpjpe_per_frame(pred, target).max().item() < 1e-9
    assert torch.allclose(procrustes_align(pred, target), target, atol=1e-9)


def test_mirrored_copy_is_not_aligned_by_procrustes() -> None:
    target = _poses(6, seed=2)
    mirrored = target * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    err = p_mpjpe_per_frame(mirrored, target)
    # A proper rotation cannot undo a reflection of a non-planar pose: clearly non-zero.
    assert err.min().item() > 0.02
    assert np.allclose(err.numpy(), _numpy_p_mpjpe(mirrored.numpy(), target.numpy()))
    # Without the det<0 fix the orthogonal map is the reflection itself and the error vanishes.
    no_fix = _numpy_p_mpjpe(mirrored.numpy(), target.numpy(), reflection_fix=False)
    assert no_fix.max() < 1e-9


def test_p_mpjpe_matches_numpy_reference_and_float32() -> None:
    target = _poses(64, seed=3)
    gen = torch.Generator().manual_seed(3)
    pred = target @ _random_rotation(gen) * 0.8 + 0.05 * torch.randn(
        64, 17, 3, generator=gen, dtype=torch.float64
    )
    ref = _numpy_p_mpjpe(pred.numpy(), target.numpy())
    got = p_mpjpe_per_frame(pred, target).numpy()
    assert np.allclose(got, ref, rtol=1e-10, atol=1e-12)
    got32 = p_mpjpe_per_frame(pred.float(), target.float())
    assert got32.dtype == torch.float32
    assert np.allclose(got32.numpy(), ref, rtol=1e-5)
    assert p_mpjpe(pred, target).item() == pytest.approx(ref.mean())
    # Batched leading axes (B, T, J, 3) give the same per-frame values.
    got_bt = p_mpjpe_per_frame(pred.view(8, 8, 17, 3), target.view(8, 8, 17, 3))
    assert np.allclose(got_bt.reshape(-1).numpy(), ref)


def test_n_mpjpe_scale_only() -> None:
    target = _poses(3, seed=4)
    assert n_mpjpe(0.5 * target, target).item() < 1e-12
    shifted = 0.5 * target + 0.1
    assert n_mpjpe(shifted, target).item() > 0.01  # translation is not compensated


def test_mpjve_constant_velocity_and_drift() -> None:
    t = torch.arange(10, dtype=torch.float64)
    base = _poses(1, seed=5)  # (1, 17, 3)
    v = torch.tensor([0.01, 0.0, -0.02], dtype=torch.float64)
    target = base + t[:, None, None] * v  # (T, J, 3) constant velocity
    pred = target + 0.05  # constant offset: wrong position, right velocity
    assert mpjve(pred, target, dim=0).item() == pytest.approx(0.0, abs=1e-12)
    assert mpjpe(pred, target).item() > 0.05
    drift = torch.tensor([0.003, 0.004, 0.0], dtype=torch.float64)
    pred = target + t[:, None, None] * drift  # extra 5 mm per frame
    assert mpjve(pred, target, dim=0).item() == pytest.approx(0.005)
    # (B, T, J, 3) with time on axis 1
    batch = torch.stack([pred, target + 2 * t[:, None, None] * drift])
    tgt = torch.stack([target, target])
    assert mpjve(batch, tgt, dim=1).item() == pytest.approx(0.0075)


def test_pck_is_strict_at_threshold() -> None:
    err = torch.zeros(2, 17)
    joints = list(MPI_PCK_JOINTS)
    assert len(joints) == 14
    err[0, joints] = 150.0  # exactly at threshold: miss
    err[1, joints] = 149.9  # just below: hit
    for excluded in ("pelvis", "spine", "head"):
        err[:, MPI_INF_3DHP.index(excluded)] = 1000.0  # not scored
    assert pck(err).item() == pytest.approx(50.0)
    assert pck(err[:1]).item() == 0.0
    assert pck(err[1:]).item() == 100.0
    assert pck(err, joints=None).item() == pytest.approx(100 * 14 / 34)


def test_auc_hand_cases() -> None:
    assert (
        len(AUC_THRESHOLDS_MM) == 31 and AUC_THRESHOLDS_MM[0] == 0 and AUC_THRESHOLDS_MM[-1] == 150
    )
    zero = torch.zeros(1, 17)
    # error 0 passes every threshold except 0 (strict): 30 / 31
    assert auc(zero).item() == pytest.approx(100 * 30 / 31)
    err = torch.zeros(2, 17)
    err[0] = 12.0  # passes 15..150: 28 thresholds
    err[1] = 149.9  # passes only 150
    assert auc(err).item() == pytest.approx(100 * (28 + 1) / (2 * 31))
    assert auc(torch.full((3, 17), 150.0)).item() == 0.0


def test_first_occurrence() -> None:
    idx = torch.tensor([5, 3, 5, 7, 3, 9])
    pos = first_occurrence(idx)
    assert pos.tolist() == [1, 0, 3, 5]  # values 3, 5, 7, 9
    assert math.isclose(float(idx[pos].float().mean()), 6.0)
