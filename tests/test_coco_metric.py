"""COCO keypoint metric: OKS hand cases, rescoring, OKS-NMS, AP on a tiny COCO fixture."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.skeleton import COCO_OKS_SIGMAS
from pose2d.coco_metric import STAT_NAMES, COCOKeypointMetric, build_results
from pose2d.oks import coco_oks, oks_nms, pairwise_oks, rescore


def _pose(x0: float, y0: float, size: float, rng: np.random.Generator) -> np.ndarray:
    kp = np.zeros((17, 3))
    kp[:, 0] = x0 + rng.uniform(0, size, 17)
    kp[:, 1] = y0 + rng.uniform(0, 1.5 * size, 17)
    kp[:, 2] = 2
    return kp


@pytest.fixture
def coco_fixture(tmp_path: Path) -> tuple[str, list[dict]]:
    """4 images, 2 people each (medium and large areas), a crowd and a zero-keypoint person."""
    rng = np.random.default_rng(0)
    images, anns = [], []
    for img in range(1, 5):
        images.append({"id": img, "width": 640, "height": 480, "file_name": f"{img:012d}.jpg"})
        for p in range(2):
            size = 50.0 if (img + p) % 2 else 180.0  # area 0.7·1.5·s²: ~2.6k (M), ~34k (L)
            kp = _pose(20 + 300 * p, 30, size, rng)
            kp[rng.random(17) < 0.2] = 0  # some joints unlabelled
            box = [20 + 300 * p, 30, size, 1.5 * size]
            anns.append({"image_id": img, "iscrowd": 0, "bbox": box,
                         "area": 0.7 * 1.5 * size**2, "keypoints": kp})  # fmt: skip
    anns.append({"image_id": 1, "iscrowd": 1, "bbox": [400, 300, 100, 100], "area": 8000.0,
                 "keypoints": _pose(400, 300, 60, rng)})  # fmt: skip
    anns.append({"image_id": 2, "iscrowd": 0, "bbox": [500, 300, 40, 60], "area": 1800.0,
                 "keypoints": np.zeros((17, 3))})  # fmt: skip
    out = []
    for i, a in enumerate(anns, start=1):
        kp = a["keypoints"]
        out.append(a | {"id": i, "category_id": 1, "keypoints": kp.ravel().tolist(),
                        "num_keypoints": int((kp[:, 2] > 0).sum())})  # fmt: skip
    gt = {
        "images": images,
        "annotations": out,
        "categories": [{"id": 1, "name": "person", "supercategory": "person",
                        "keypoints": [f"k{j}" for j in range(17)], "skeleton": []}],
    }  # fmt: skip
    path = tmp_path / "person_keypoints_fixture.json"
    path.write_text(json.dumps(gt))
    return str(path), out


def _gt_as_predictions(anns: list[dict]) -> dict[str, torch.Tensor]:
    """Scorable people (non-crowd, labelled) fed back as predictions with score 0.9."""
    people = [a for a in anns if not a["iscrowd"] and a["num_keypoints"] > 0]
    kp = torch.tensor([a["keypoints"] for a in people], dtype=torch.float32).view(-1, 17, 3)
    kp[..., 2] = 0.9
    n = len(people)
    return {
        "index": torch.arange(n),
        "image_id": torch.tensor([a["image_id"] for a in people]),
        "keypoints": kp,
        "box_score": torch.ones(n),
        "area": torch.tensor([a["bbox"][2] * a["bbox"][3] for a in people]),
    }


def test_oks_hand_cases() -> None:
    gt = np.zeros((17, 3))
    gt[:, :2] = np.arange(34).reshape(17, 2) * 3.0
    gt[:, 2] = 2
    assert coco_oks(gt, gt[:, :2], area=5000.0) == pytest.approx(1.0)
    d = gt[:, :2] + np.array([3.0, 4.0])  # every joint 5 px off
    k = 2 * COCO_OKS_SIGMAS
    expected = np.exp(-25.0 / (2 * 5000.0 * k**2)).mean()
    assert coco_oks(gt, d, area=5000.0) == pytest.approx(expected)
    gt[:8, 2] = 0  # unlabelled joints are not averaged
    assert coco_oks(gt, d, area=5000.0) == pytest.approx(
        np.exp(-25.0 / (2 * 5000.0 * k[8:] ** 2)).mean()
    )
    # NMS variant: normaliser is the mean of the two areas
    a = np.stack([gt, gt])
    a[1, :, :2] += np.array([3.0, 4.0])
    ovr = pairwise_oks(a, np.array([4000.0, 6000.0]))
    assert ovr[0, 0] == pytest.approx(1.0) and ovr[0, 1] == pytest.approx(ovr[1, 0])
    assert ovr[0, 1] == pytest.approx(np.exp(-25.0 / (2 * 5000.0 * k**2)).mean())


def test_rescore_hand_case() -> None:
    s = np.array([[0.9, 0.1, 0.5, 0.2, 0.3], [0.1, 0.2, 0.0, 0.15, 0.05]])
    got = rescore(s, np.array([0.8, 0.9]), in_vis_thresh=0.2)
    # row 0: joints > 0.2 (strict) are 0.9, 0.5, 0.3 → mean 0.5667 × 0.8; row 1: none → 0
    assert got[0] == pytest.approx(0.8 * (0.9 + 0.5 + 0.3) / 3)
    assert got[1] == 0.0


def test_oks_nms_removes_near_duplicate_keeps_distinct() -> None:
    rng = np.random.default_rng(1)
    a = _pose(50, 50, 100, rng)
    near = a.copy()
    near[:, :2] += 0.5  # sub-pixel shift: OKS ≈ 1 > 0.9
    far = _pose(300, 50, 100, rng)
    kpts = np.stack([near, a, far])
    keep = oks_nms(kpts, np.array([0.5, 0.9, 0.7]), np.full(3, 15000.0), thresh=0.9)
    assert keep.tolist() == [1, 2]  # best of the duplicates first, then the distinct pose
    assert oks_nms(kpts, np.array([0.5, 0.9, 0.7]), np.full(3, 15000.0), thresh=1.0).size == 3
    assert oks_nms(np.zeros((0, 17, 3)), np.zeros(0), np.zeros(0)).size == 0


def test_build_results_format_and_nms_per_image() -> None:
    rng = np.random.default_rng(2)
    a = _pose(50, 50, 100, rng)
    kpts = np.stack([a, a, a])
    kpts[..., 2] = 0.8
    res = build_results(np.array([7, 7, 8]), kpts, np.array([1.0, 0.5, 1.0]), np.full(3, 1e4))
    assert [r["image_id"] for r in res] == [7, 8]  # duplicate in image 7 suppressed, not in 8
    assert res[0]["score"] == pytest.approx(0.8) and res[0]["category_id"] == 1
    assert len(res[0]["keypoints"]) == 51
    assert (
        len(build_results(np.array([7, 7]), kpts[:2], np.ones(2), np.ones(2), use_nms=False)) == 2
    )


def test_gt_fed_back_gives_perfect_ap(coco_fixture) -> None:
    ann_file, anns = coco_fixture
    m = COCOKeypointMetric(ann_file)
    m.update(**_gt_as_predictions(anns))
    out = m.compute()
    assert set(out) == set(STAT_NAMES)
    for k in STAT_NAMES:
        assert out[k] == pytest.approx(1.0), k
    assert len(m.results) == 8


def test_perturbed_predictions_lower_ap_and_save(coco_fixture, tmp_path: Path) -> None:
    ann_file, anns = coco_fixture
    preds = _gt_as_predictions(anns)
    gen = torch.Generator().manual_seed(0)
    preds["keypoints"][..., :2] += 6.0 * torch.randn(
        preds["keypoints"][..., :2].shape, generator=gen
    )
    m = COCOKeypointMetric(ann_file)
    m.update(**preds)
    out = m.compute()
    assert 0.0 < out["AP"] < 0.95
    assert out["APm"] < out["APl"]  # same pixel noise hurts small people more
    path = m.save(tmp_path / "out" / "results.json")
    saved = json.loads(path.read_text())
    assert len(saved) == 8 and set(saved[0]) == {"image_id", "category_id", "keypoints", "score"}


def test_padded_duplicates_are_removed(coco_fixture) -> None:
    ann_file, anns = coco_fixture
    preds = _gt_as_predictions(anns)
    # A padded copy with a wrong pose under an existing index: kept once, the first copy wins.
    bad = preds["keypoints"][:1].clone()
    bad[..., :2] += 40.0
    m = COCOKeypointMetric(ann_file, use_nms=False)
    m.update(**preds)
    m.update(preds["index"][:1], preds["image_id"][:1], bad, preds["box_score"][:1] * 2,
             preds["area"][:1])  # fmt: skip
    assert m.compute()["AP"] == pytest.approx(1.0)
    assert len(m.results) == 8


def test_empty_predictions_warn_and_return_zeros(coco_fixture) -> None:
    ann_file, _ = coco_fixture
    m = COCOKeypointMetric(ann_file)
    with pytest.warns(UserWarning):
        out = m.compute()
    assert out == dict.fromkeys(STAT_NAMES, 0.0)


def test_bad_inputs_are_reported(coco_fixture, tmp_path: Path) -> None:
    ann_file, anns = coco_fixture
    with pytest.raises(FileNotFoundError, match="person_keypoints_val2017"):
        COCOKeypointMetric(str(tmp_path / "missing.json")).coco_gt  # noqa: B018
    preds = _gt_as_predictions(anns)
    preds["image_id"][0] = 999
    m = COCOKeypointMetric(ann_file)
    m.update(**preds)
    with pytest.raises(ValueError, match="999"):
        m.compute()
    with pytest.raises(ValueError, match="backend"):
        COCOKeypointMetric(ann_file, backend="nope")


def test_faster_coco_eval_backend_is_identical(coco_fixture) -> None:
    pytest.importorskip("faster_coco_eval")
    ann_file, anns = coco_fixture
    preds = _gt_as_predictions(anns)
    gen = torch.Generator().manual_seed(1)
    preds["keypoints"][..., :2] += 5.0 * torch.randn(
        preds["keypoints"][..., :2].shape, generator=gen
    )
    preds["box_score"] = torch.linspace(0.5, 1.0, len(preds["index"]))
    outs = {}
    for backend in ("pycocotools", "faster_coco_eval"):
        m = COCOKeypointMetric(ann_file, backend=backend)
        m.update(**preds)
        outs[backend] = m.compute()
    assert 0.0 < outs["pycocotools"]["AP"] < 1.0  # a non-trivial case
    for k in STAT_NAMES:
        assert math.isclose(outs["pycocotools"][k], outs["faster_coco_eval"][k], abs_tol=1e-12), k
