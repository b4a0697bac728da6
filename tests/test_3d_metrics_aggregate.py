"""H36MMetrics / MPI3DHPMetrics: action-wise vs frame-wise, MPJVE ordering, de-duplication."""

from __future__ import annotations

import math

import pytest
import torch

from datamodules.skeleton import H36M, H36M_ACTIONS, MPI_INF_3DHP, MPI_PCK_JOINTS
from pose3d.metrics import H36MMetrics, MPI3DHPMetrics, flatten_metrics, zeroes_predicted_root


def _target(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    t = torch.randn(n, 17, 3, generator=gen) * 0.3
    t[:, 0] = 0  # root-relative, root zeroed (batch contract)
    return t


def _ids(n: int, action: list[int], seq: list[int], frame: list[int]):
    return (
        torch.tensor(action),
        torch.tensor(seq),
        torch.tensor(frame),
        torch.arange(n),
    )


def _offset(mm: float) -> torch.Tensor:
    return torch.tensor([mm * 0.6, mm * 0.8, 0.0]) / 1000.0  # |offset| = mm millimetres


def test_root_is_zeroed_and_counted() -> None:
    target = _target(2)
    pred = target + _offset(5.0)  # every joint 5 mm off, root too
    m = H36MMetrics(list(H36M_ACTIONS))
    m.update(pred, target, *_ids(2, [0, 0], [0, 0], [0, 1]))
    out = m.compute()
    # root error removed by zeroing, still counted in the mean over 17 joints
    assert out["mpjpe"].item() == pytest.approx(5.0 * 16 / 17, rel=1e-5)
    assert out["p_mpjpe"].item() < out["mpjpe"].item()


def test_eval_root_readings() -> None:
    assert not zeroes_predicted_root("auto", H36M.name)  # PoseFormer/VideoPose3D evaluate
    assert zeroes_predicted_root("auto", MPI_INF_3DHP.name)  # root-relative PCK
    assert zeroes_predicted_root("zero", H36M.name) and not zeroes_predicted_root(
        "predicted", MPI_INF_3DHP.name
    )
    with pytest.raises(ValueError, match="eval_root must be one of"):
        zeroes_predicted_root("subtract", H36M.name)
    target = _target(2)
    pred = target + _offset(5.0)  # every joint 5 mm off, root too
    m = H36MMetrics(list(H36M_ACTIONS), zero_root=False)
    m.update(pred, target, *_ids(2, [0, 0], [0, 0], [0, 1]))
    assert m.compute()["mpjpe"].item() == pytest.approx(5.0, rel=1e-5)  # the root's 5 mm count


def test_actionwise_vs_framewise_on_unbalanced_actions() -> None:
    names = ["A", "B"]
    target = _target(4, seed=1)
    errs = [10.0, 10.0, 10.0, 30.0]  # action A: 3 frames at 10 mm, action B: 1 frame at 30 mm
    pred = target + torch.stack([_offset(e) for e in errs])[:, None, :]
    m = H36MMetrics(names, zero_root=False)
    m.update(pred, target, *_ids(4, [0, 0, 0, 1], [0, 0, 0, 1], [0, 1, 2, 0]))
    out = m.compute()
    assert out["mpjpe"].item() == pytest.approx((10 + 30) / 2, rel=1e-5)  # action-wise: 20
    assert out["mpjpe_framewise"].item() == pytest.approx((3 * 10 + 30) / 4, rel=1e-5)  # 15
    assert out["per_action"]["A"]["mpjpe"] == pytest.approx(10.0, rel=1e-5)
    assert out["per_action"]["B"]["frames"] == 1
    assert out["p_mpjpe"].item() == pytest.approx(0.0, abs=1e-3)  # pure translations
    assert out["frames"] == 4
    # Sequence B has one frame: no velocity; action-wise MPJVE uses action A only.
    assert math.isnan(out["per_action"]["B"]["mpjve"])
    assert out["mpjve"].item() == pytest.approx(0.0, abs=1e-4)


def test_mpjve_orders_frames_within_sequences_and_weights_by_length() -> None:
    names = ["A", "B"]
    # seq 0 (action A): 4 frames drifting 1 mm/frame; seq 1 (action B): 2 frames at 3 mm/frame
    seq = [0, 0, 0, 0, 1, 1]
    frame = [0, 1, 2, 3, 0, 1]
    rate = [1.0, 1.0, 1.0, 1.0, 3.0, 3.0]
    target = _target(6, seed=2)
    pred = target + torch.stack([_offset(r * f) for r, f in zip(rate, frame, strict=True)])[:, None]
    perm = torch.tensor([3, 5, 0, 2, 4, 1])  # arrive shuffled and in two batches
    m = H36MMetrics(names, zero_root=False)
    act = torch.tensor([0, 0, 0, 0, 1, 1])
    for part in (perm[:3], perm[3:]):
        m.update(pred[part], target[part], act[part], torch.tensor(seq)[part],
                 torch.tensor(frame)[part], part)  # fmt: skip
    out = m.compute()
    assert out["per_action"]["A"]["mpjve"] == pytest.approx(1.0, rel=1e-4)
    assert out["per_action"]["B"]["mpjve"] == pytest.approx(3.0, rel=1e-4)
    assert out["mpjve"].item() == pytest.approx(2.0, rel=1e-4)
    # VideoPose3D weighting: each sequence's mean velocity error weighted by its frame count
    assert out["mpjve_framewise"].item() == pytest.approx((4 * 1.0 + 2 * 3.0) / 6, rel=1e-4)


def test_duplicates_from_padding_are_counted_once() -> None:
    names = ["A", "B"]
    target = _target(5, seed=3)
    errs = torch.tensor([10.0, 20.0, 30.0, 40.0, 90.0])
    pred = target + torch.stack([_offset(float(e)) for e in errs])[:, None]
    ids = _ids(5, [0, 0, 1, 1, 1], [0, 0, 1, 1, 1], [0, 1, 0, 1, 2])
    single = H36MMetrics(names, zero_root=False)
    single.update(pred, target, *ids)
    ref = single.compute()

    # "rank 0" sees 0..2 then a padded copy of 4; "rank 1" sees 3, 4 and a padded copy of 0
    dup = H36MMetrics(names, zero_root=False)
    for sel in ([0, 1, 2, 4], [3, 4, 0]):
        s = torch.tensor(sel)
        dup.update(pred[s], target[s], *(x[s] for x in ids))
    got = dup.compute()
    for key in ("mpjpe", "p_mpjpe", "mpjve", "mpjpe_framewise", "mpjve_framewise"):
        assert got[key].item() == pytest.approx(ref[key].item(), rel=1e-6), key
    assert got["frames"] == 5
    assert ref["mpjpe_framewise"].item() == pytest.approx(errs.mean().item(), rel=1e-5)

    plain = H36MMetrics(names, zero_root=False)  # without de-duplication the mean would move
    plain.update(pred[[0, 1, 2, 4, 3, 4, 0]], target[[0, 1, 2, 4, 3, 4, 0]],
                 *(x[[0, 1, 2, 4, 3, 4, 0]] for x in ids[:3]), torch.arange(7))  # fmt: skip
    assert plain.compute()["mpjpe_framewise"].item() == pytest.approx(290 / 7, rel=1e-5)


def test_centre_frame_is_taken_from_windows() -> None:
    target = _target(3, seed=4)
    m = H36MMetrics(["A"], zero_root=False)
    win = target[:, None].repeat(1, 3, 1, 1)
    pred = win.clone()
    pred[:, 1] += _offset(7.0)  # only the centre frame is wrong
    m.update(pred, win, *_ids(3, [0, 0, 0], [0, 0, 0], [0, 1, 2]))
    assert m.compute()["mpjpe"].item() == pytest.approx(7.0, rel=1e-5)


def test_3dhp_pooled_and_per_sequence() -> None:
    names = ["TS1", "TS2"]
    target = _target(3, seed=5)
    pred = target.clone()
    pred[:2] += _offset(102.0)  # TS1: 2 frames at 102 mm → all hits
    pred[2] += _offset(200.0)  # TS2: 1 frame at 200 mm → all misses
    m = MPI3DHPMetrics(names, zero_root=False)
    m.update(pred, target, *_ids(3, [0, 0, 1], [0, 0, 1], [0, 1, 0]))
    out = m.compute()
    assert out["pck"].item() == pytest.approx(100 * 2 / 3)
    assert out["pck_seqavg"].item() == pytest.approx(50.0)
    assert out["per_sequence"]["TS1"]["pck"] == 100.0
    assert out["per_sequence"]["TS2"]["pck"] == 0.0
    # AUC: 102 mm passes 105..150 (10 of 31); 200 mm passes none
    assert out["per_sequence"]["TS1"]["auc"] == pytest.approx(100 * 10 / 31)
    assert out["auc"].item() == pytest.approx(100 * 10 / 31 * 2 / 3)
    assert out["mpjpe"].item() == pytest.approx((2 * 102 + 200) / 3, rel=1e-5)
    assert out["frames"] == 3


def test_3dhp_uses_only_pck_joints_and_zeroes_root() -> None:
    target = _target(1, seed=6)
    pred = target.clone()
    pred[:, MPI_INF_3DHP.index("spine")] += _offset(500.0)  # not a PCK joint
    pred[:, MPI_INF_3DHP.root] += _offset(500.0)  # the root: zeroed before scoring
    m = MPI3DHPMetrics(["TS1"])
    m.update(pred, target, *_ids(1, [0], [0], [0]))
    out = m.compute()
    assert len(MPI_PCK_JOINTS) == 14
    assert out["pck"].item() == 100.0
    assert out["mpjpe"].item() == pytest.approx(500.0 / 17, rel=1e-4)


def test_empty_and_flatten() -> None:
    m = H36MMetrics(["A"])
    with pytest.warns(UserWarning):
        out = m.compute()
    assert math.isnan(out["mpjpe"].item()) and out["frames"] == 0
    m = H36MMetrics(["A", "B"], zero_root=False)
    t = _target(2)
    m.update(t + _offset(3.0), t, *_ids(2, [0, 1], [0, 1], [0, 0]))
    flat = flatten_metrics(m.compute(), prefix="test/")
    assert flat["test/mpjpe/A"] == pytest.approx(3.0, rel=1e-5)
    assert flat["test/frames"] == 2.0
    assert all(isinstance(v, float) for v in flat.values())
