"""COCO keypoint loader: filters, box clipping, detections, bad images, augmentation, batches."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from datamodules.coco import CocoKeypoints, CocoKeypointsDataModule, load_gt_records
from datamodules.coco_transforms import AugmentConfig, crop_matrix, warp_sample
from datamodules.skeleton import COCO
from datamodules.synthetic_coco import DET_FILE, generate_synthetic_coco
from pose2d.heatmaps import decode_heatmaps
from pose2d.transforms import affine_points, box_to_center_scale, get_affine_transform

W, H = 64, 48


def _kps(n_labelled: int, x0: float = 10.0) -> list[float]:
    k = np.zeros((17, 3))
    k[:n_labelled, 0] = x0 + np.arange(n_labelled)
    k[:n_labelled, 1] = 20.0
    k[:n_labelled, 2] = 2
    return k.reshape(-1).tolist()


@pytest.fixture
def tiny_coco(tmp_path: Path) -> Path:
    """Hand-written COCO layout: 2 images, 6 annotations of which 2 are valid training samples."""
    (tmp_path / "annotations").mkdir()
    for split in ("train", "val"):
        (tmp_path / f"{split}2017").mkdir()
        for i in (1, 2):
            img = np.full((H, W, 3), 40 * i, np.uint8)
            cv2.imwrite(str(tmp_path / f"{split}2017" / f"{i:012d}.jpg"), img)
    ann = [
        # valid; box runs past the right/bottom border -> clipped to (W-1, H-1)
        {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 100.0,
         "bbox": [50.0, 30.0, 40.0, 40.0], "keypoints": _kps(5), "num_keypoints": 5},
        {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 1, "area": 100.0,
         "bbox": [0.0, 0.0, 10.0, 10.0], "keypoints": _kps(3), "num_keypoints": 3},  # crowd
        {"id": 3, "image_id": 2, "category_id": 1, "iscrowd": 0, "area": 50.0,
         "bbox": [1.0, 1.0, 10.0, 10.0], "keypoints": [0] * 51, "num_keypoints": 0},  # no kps
        {"id": 4, "image_id": 2, "category_id": 1, "iscrowd": 0, "area": 0.0,
         "bbox": [1.0, 1.0, 10.0, 10.0], "keypoints": _kps(2), "num_keypoints": 2},  # area 0
        {"id": 5, "image_id": 2, "category_id": 1, "iscrowd": 0, "area": 30.0,
         "bbox": [70.0, 5.0, 10.0, 10.0], "keypoints": _kps(2), "num_keypoints": 2},  # off image
        # valid; negative x clipped to 0, one occluded joint (v=1 counts as visible)
        {"id": 6, "image_id": 2, "category_id": 1, "iscrowd": 0, "area": 80.0,
         "bbox": [-5.0, 2.0, 20.0, 30.0], "keypoints": _kps(3, 5.0), "num_keypoints": 3},
    ]  # fmt: skip
    ann[5]["keypoints"][5] = 1
    coco = {
        "images": [
            {"id": i, "file_name": f"{i:012d}.jpg", "width": W, "height": H} for i in (1, 2)
        ],
        "annotations": ann,
        "categories": [{"id": 1, "name": "person"}],
    }
    for split in ("train", "val"):
        (tmp_path / "annotations" / f"person_keypoints_{split}2017.json").write_text(
            json.dumps(coco)
        )
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [5.0, 5.0, 20.0, 30.0], "score": 0.9},
        {"image_id": 2, "category_id": 1, "bbox": [10.0, 5.0, 20.0, 20.0], "score": 0.3},
        {"image_id": 2, "category_id": 2, "bbox": [10.0, 5.0, 20.0, 20.0], "score": 0.99},
    ]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    return tmp_path


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic_coco(tmp_path_factory.mktemp("syn"), num_train=8, num_val=4, seed=3)


def test_filters_and_box_clipping_match_official(tiny_coco):
    coco = json.loads((tiny_coco / "annotations/person_keypoints_train2017.json").read_text())
    rec = load_gt_records(coco)
    np.testing.assert_array_equal(rec["image_id"], [1, 2])
    # id 1: x2 = min(63, 50 + 39) = 63, y2 = min(47, 30 + 39) = 47.
    # id 6: x1 = 0, x2 = min(63, 0 + 19) = 19; y2 = 2 + 29 = 31.
    np.testing.assert_allclose(rec["box"], [[50, 30, 13, 17], [0, 2, 19, 29]])
    np.testing.assert_array_equal(rec["visible"][1, :4], [1, 1, 1, 0])
    ds = CocoKeypoints(tiny_coco, "train")
    c, s = box_to_center_scale(np.array([50.0, 30.0, 13.0, 17.0]))
    np.testing.assert_allclose(ds.center[0], c)
    np.testing.assert_allclose(ds.scale[0], s)


def test_detection_boxes_threshold_and_source(tiny_coco):
    ds = CocoKeypoints(tiny_coco, "val", boxes=str(tiny_coco / "dets.json"), det_score_thresh=0.5)
    assert ds.box_source == "dets.json" and len(ds) == 1
    item = ds[0]
    assert item["box_score"].item() == pytest.approx(0.9)
    assert item["target_weight"].sum() == 0  # no GT joints with detection boxes
    np.testing.assert_allclose(item["center"].numpy(), [15.0, 20.0])
    all_dets = CocoKeypoints(tiny_coco, "val", boxes=str(tiny_coco / "dets.json"))
    assert len(all_dets) == 2  # category 2 dropped
    with pytest.raises(FileNotFoundError, match="val_boxes=gt"):
        CocoKeypoints(tiny_coco, "val", boxes=str(tiny_coco / "nope.json"))


def test_missing_dataset_error_names_files_and_synthetic(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        CocoKeypointsDataModule(root=str(tmp_path / "coco")).setup("fit")
    msg = str(e.value)
    assert "person_keypoints_train2017.json" in msg and "train2017" in msg
    assert "synthetic" in msg


def test_corrupt_image_is_reported_and_skipped(tiny_coco, caplog):
    bad = tiny_coco / "train2017" / f"{1:012d}.jpg"
    bad.write_bytes(b"\xff\xd8\xff not a jpeg")
    ds = CocoKeypoints(tiny_coco, "train")
    with caplog.at_level(logging.WARNING, logger="datamodules.coco"):
        item = ds[0]
    assert item["index"].item() == 1  # the next readable sample
    assert str(bad) in caplog.text
    report = ds.verify()
    assert [p for p, _ in report] == [str(bad)] and "cannot decode" in report[0][1]
    (tiny_coco / "train2017" / f"{2:012d}.jpg").unlink()
    with pytest.raises(RuntimeError, match="verify"):
        ds[0]


def test_batch_contract_from_datamodule(synthetic_root):
    dm = CocoKeypointsDataModule(
        root=str(synthetic_root), batch_size=4, num_workers=0, val_boxes=DET_FILE
    )
    dm.setup("fit")
    assert dm.box_source == "synthetic_val2017_detections.json"
    assert dm.ann_file("val").endswith("annotations/person_keypoints_val2017.json")
    assert dm.input_size == (192, 256)
    for batch, train in ((next(iter(dm.train_dataloader())), True),
                         (next(iter(dm.val_dataloader())), False)):  # fmt: skip
        b = batch["image"].shape[0]
        assert batch["image"].shape == (b, 3, 256, 192) and batch["image"].dtype == torch.float32
        assert batch["heatmap"].shape == (b, 17, 64, 48) and batch["heatmap"].dtype == torch.float32
        assert batch["target_weight"].shape == (b, 17)
        expect = {
            "center": ((b, 2), torch.float32), "scale": ((b, 2), torch.float32),
            "image_id": ((b,), torch.int64), "box_score": ((b,), torch.float32),
            "area": ((b,), torch.float32), "index": ((b,), torch.int64),
        }  # fmt: skip
        for k, (shape, dt) in expect.items():
            assert batch[k].shape == shape and batch[k].dtype == dt, k
        assert b == 4 or not train
    assert (batch["box_score"] < 1).all()  # detection scores, not GT ones
    dm384 = CocoKeypointsDataModule(root=str(synthetic_root), input_size=[288, 384], sigma=3.0)
    dm384.setup("validate")
    item = dm384.val_set[0]
    assert item["image"].shape == (3, 384, 288) and item["heatmap"].shape == (17, 96, 72)


def test_images_are_imagenet_normalised_rgb(synthetic_root):
    ds = CocoKeypoints(synthetic_root, "val")
    item = ds[0]
    m = crop_matrix(ds.center[0], ds.scale[0], 0.0, False, ds.input_size)
    raw = cv2.imread(str(ds.image_path(0)))
    crop = cv2.warpAffine(raw, m, ds.input_size, flags=cv2.INTER_LINEAR)
    expect_r = (crop[..., 2] / 255.0 - 0.485) / 0.229
    np.testing.assert_allclose(item["image"][0].numpy(), expect_r, atol=1e-5)


def test_folded_flip_equals_official_mirror_then_warp():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, size=(120, 160, 3), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (7, 7), 2)
    c, s, rot = np.array([70.0, 60.0]), np.array([90.0, 120.0]), 25.0
    # Official: mirror the image and the centre, then warp with the same rotation.
    c_m = np.array([160 - 1 - c[0], c[1]])
    official = cv2.warpAffine(
        cv2.flip(img, 1), get_affine_transform(c_m, s, rot, (48, 64)), (48, 64),
        flags=cv2.INTER_LINEAR,
    )  # fmt: skip
    ours = cv2.warpAffine(img, crop_matrix(c, s, rot, True, (48, 64)), (48, 64),
                          flags=cv2.INTER_LINEAR)  # fmt: skip
    assert np.abs(official.astype(int) - ours.astype(int)).max() <= 1
    joints = rng.uniform(40, 100, size=(17, 2))
    j_official = affine_points(
        np.stack([160 - 1 - joints[:, 0], joints[:, 1]], -1),
        get_affine_transform(c_m, s, rot, (48, 64)),
    )[list(COCO.flip_index)]
    _, j_ours, _ = warp_sample(img, joints, np.ones(17), crop_matrix(c, s, rot, True, (48, 64)),
                               (48, 64), True)  # fmt: skip
    np.testing.assert_allclose(j_ours, j_official, atol=1e-9)


@pytest.mark.parametrize("use_udp", [False, True])
def test_flip_twice_is_identity_on_joints(use_udp):
    c, s = np.array([80.0, 60.0]), np.array([96.0, 128.0])
    joints = np.random.default_rng(1).uniform(30, 120, size=(17, 2))
    m0 = crop_matrix(c, s, 0.0, False, (192, 256), use_udp)
    m1 = crop_matrix(c, s, 0.0, True, (192, 256), use_udp)
    once = affine_points(joints, m1)[list(COCO.flip_index)]
    mirror_back = once.copy()
    mirror_back[:, 0] = (191.0 if use_udp else 192.0) - mirror_back[:, 0]
    np.testing.assert_allclose(mirror_back[list(COCO.flip_index)], affine_points(joints, m0))


def test_augmented_heatmap_peak_lands_on_the_drawn_joint(tmp_path):
    """Draw a bright dot at each joint; after random augmentation the crop's brightest pixel,
    the heatmap peak and the affine-warped joint agree."""
    root = tmp_path
    (root / "annotations").mkdir()
    (root / "train2017").mkdir()
    (root / "val2017").mkdir()
    rng = np.random.default_rng(5)
    joints = rng.uniform([60, 40], [200, 200], size=(17, 2)).round()
    anns, images = [], []
    for j in range(17):  # one image per joint so each crop has one bright dot
        img = np.zeros((240, 320, 3), np.uint8)
        cv2.circle(img, (int(joints[j, 0]), int(joints[j, 1])), 3, (255, 255, 255), -1)
        cv2.imwrite(str(root / "train2017" / f"{j + 1:012d}.png"), img)
        k = np.zeros((17, 3))
        k[j] = [joints[j, 0], joints[j, 1], 2]
        images.append({"id": j + 1, "file_name": f"{j + 1:012d}.png", "width": 320, "height": 240})
        anns.append({"id": j + 1, "image_id": j + 1, "category_id": 1, "iscrowd": 0,
                     "area": 1e4, "bbox": [50.0, 30.0, 160.0, 180.0],
                     "keypoints": k.reshape(-1).tolist()})  # fmt: skip
    coco = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    for split in ("train", "val"):
        (root / "annotations" / f"person_keypoints_{split}2017.json").write_text(json.dumps(coco))
    aug = AugmentConfig(flip_prob=0.5, rot_prob=1.0, half_body_prob=0.0)
    ds = CocoKeypoints(root, "train", augment=True, aug=aug)
    torch.manual_seed(0)
    checked = 0
    for i in range(len(ds)):
        item = ds[i]
        w = item["target_weight"]
        if w.sum() == 0:
            continue
        (jj,) = torch.nonzero(w).flatten().tolist()
        coords, _ = decode_heatmaps(item["heatmap"][None], "standard")
        peak_img = coords[0, jj].numpy() * 4  # heatmap px -> input px (stride 4)
        gray = item["image"][0].numpy()
        if gray.max() < 0:  # the dot left the crop (its Gaussian may still touch the map)
            continue
        ys, xs = np.nonzero(gray > 0.5 * gray.max())
        dot = np.array([xs.mean(), ys.mean()])  # centroid of the warped dot
        if not (6 < dot[0] < 186 and 6 < dot[1] < 250):
            continue
        # Integer-grid target (<= 2 px at stride 4) + quarter-pixel shift (1 px).
        assert np.abs(peak_img - dot).max() <= 3.2, (i, peak_img, dot)
        checked += 1
    assert checked >= 10


def test_augmentation_is_reproducible_under_torch_seed(synthetic_root):
    ds = CocoKeypoints(synthetic_root, "train", augment=True)
    torch.manual_seed(11)
    a = ds[0]["image"]
    torch.manual_seed(11)
    b = ds[0]["image"]
    torch.manual_seed(12)
    c = ds[0]["image"]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_generator_is_deterministic_and_coco_shaped(tmp_path):
    a = generate_synthetic_coco(tmp_path / "a", num_train=3, num_val=2, seed=1)
    b = generate_synthetic_coco(tmp_path / "b", num_train=3, num_val=2, seed=1)
    c = generate_synthetic_coco(tmp_path / "c", num_train=3, num_val=2, seed=2)
    for rel in ("annotations/person_keypoints_train2017.json", DET_FILE,
                f"train2017/{1:012d}.jpg", f"val2017/{1_000_001:012d}.jpg"):  # fmt: skip
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "train2017" / f"{1:012d}.jpg").read_bytes() != (
        c / "train2017" / f"{1:012d}.jpg"
    ).read_bytes()
    coco = json.loads((a / "annotations/person_keypoints_val2017.json").read_text())
    cat = coco["categories"][0]
    assert cat["keypoints"] == list(COCO.joint_names) and len(cat["skeleton"]) == 19
    for ann in coco["annotations"]:
        k = np.asarray(ann["keypoints"]).reshape(17, 3)
        assert ann["num_keypoints"] == int((k[:, 2] > 0).sum())
        assert set(np.unique(k[:, 2])) <= {0, 1, 2}
        x, y, w, h = ann["bbox"]
        labelled = k[k[:, 2] > 0, :2]
        assert (labelled >= [x - 1e-6, y - 1e-6]).all() and (labelled <= [x + w, y + h]).all()
    dets = json.loads((a / DET_FILE).read_text())
    assert {d["category_id"] for d in dets} == {1}
    assert {d["image_id"] for d in dets} <= {im["id"] for im in coco["images"]}


def test_datamodule_generates_synthetic_set_on_first_use(tmp_path):
    dm = CocoKeypointsDataModule(
        root=str(tmp_path / "syn"), synthetic=True, synthetic_num_train=2, synthetic_num_val=2,
        num_workers=0, batch_size=2,
    )  # fmt: skip
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_set) > 0 and len(dm.val_set) > 0


def test_verify_command_lists_bad_files(synthetic_root, tmp_path, capsys):
    import shutil

    from datamodules.coco import main

    root = tmp_path / "copy"
    shutil.copytree(synthetic_root, root)
    bad = root / "val2017" / f"{1_000_002:012d}.jpg"
    bad.write_bytes(b"")
    assert main(["verify", "--root", str(root), "--split", "val"]) == 1
    out = capsys.readouterr().out
    assert f"BAD {bad}" in out and "val: 1 unreadable images" in out
    assert main(["verify", "--root", str(root), "--split", "train"]) == 0


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_multiworker_loader_survives_corrupt_image_and_varies_augmentation(
    synthetic_root, tmp_path
):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(synthetic_root, root)
    (root / "train2017" / f"{3:012d}.jpg").write_bytes(b"garbage")
    dm = CocoKeypointsDataModule(root=str(root), batch_size=4, num_workers=2)
    dm.setup("fit")
    batches = [b for _ in range(2) for b in dm.train_dataloader()]
    seen = torch.cat([b["index"] for b in batches])
    bad_idx = set(np.nonzero(dm.train_set.file_name == f"{3:012d}.jpg")[0].tolist())
    assert bad_idx and not (set(seen.tolist()) & bad_idx)
    # Same sample in two epochs gets different augmentation (per-worker, per-epoch RNG).
    first = {int(i): b["image"][k] for b in batches[: len(batches) // 2]
             for k, i in enumerate(b["index"])}  # fmt: skip
    second = {int(i): b["image"][k] for b in batches[len(batches) // 2 :]
              for k, i in enumerate(b["index"])}  # fmt: skip
    common = set(first) & set(second)
    assert common and all(not torch.equal(first[i], second[i]) for i in common)
