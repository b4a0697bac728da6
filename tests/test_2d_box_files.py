"""COCO detection files as box sources: matched to images by image id (COCO ``%012d.jpg`` names
or an explicit mapping), never by position in a folder; a minimum score; a file that matches no
frame is one error line, one that matches some says how many."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from pose2d.boxes import BoxFileError, CocoJsonBoxes, coco_image_id, make_box_source

IMG = np.zeros((40, 60, 3), np.uint8)


def results_list(path, dets) -> None:
    """The official results-list layout (no ``images`` key)."""
    path.write_text(json.dumps([
        {"image_id": i, "category_id": 1, "bbox": box, "score": s} for i, box, s in dets
    ]))  # fmt: skip


def test_results_list_matched_by_coco_file_name_not_by_index(tmp_path) -> None:
    path = tmp_path / "COCO_val2017_detections_AP_H_56_person.json"
    results_list(path, [(397133, [1, 2, 3, 4], 0.9), (139, [5, 6, 7, 8], 0.3),
                        (0, [9, 9, 9, 9], 0.99)])  # fmt: skip
    src = make_box_source(f"coco_json:{path}")
    # the folder's first image is 000000000139.jpg: it gets image 139's box, not image 0's
    np.testing.assert_allclose(src(0, "000000000139.jpg", IMG), [[5, 6, 7, 8, 0.3]], rtol=1e-6)
    np.testing.assert_allclose(src(1, "000000397133.jpg", IMG), [[1, 2, 3, 4, 0.9]], rtol=1e-6)
    assert src(0, "holiday.jpg", IMG).shape == (0, 5)
    assert coco_image_id("val2017/000000397133.jpg") == 397133
    strict = make_box_source(f"coco_json:{path},min_score=0.5")
    assert strict(0, "000000000139.jpg", IMG).shape == (0, 5)  # 0.3 < 0.5
    np.testing.assert_allclose(strict(0, "", IMG), [[9, 9, 9, 9, 0.99]], rtol=1e-6)  # video


def test_explicit_mapping_and_bad_options(tmp_path) -> None:
    path, mapping = tmp_path / "dets.json", tmp_path / "names.json"
    results_list(path, [(42, [1, 1, 4, 4], 0.8)])
    mapping.write_text(json.dumps({"frames/cam0_0001.png": 42}))
    src = make_box_source(f"coco_json:{path},map={mapping}")
    np.testing.assert_allclose(src(5, "cam0_0001.png", IMG), [[1, 1, 4, 4, 0.8]], rtol=1e-6)
    with pytest.raises(BoxFileError, match="unknown option 'thresh=0.3'"):
        make_box_source(f"coco_json:{path},thresh=0.3")


def test_coverage_none_is_an_error_some_is_counted(tmp_path, capsys) -> None:
    path = tmp_path / "dets.json"
    results_list(path, [(139, [5, 6, 7, 8], 0.9)])
    src = CocoJsonBoxes(path)
    with pytest.raises(BoxFileError, match="matches none of the 2 frames") as err:
        src.check_coverage(["img_a.jpg", "img_b.jpg"])
    assert "\n" not in str(err.value) and "map=" in str(err.value)
    assert src.check_coverage(["000000000139.jpg", "000000000285.jpg"]) == 1
    assert "boxes for 1 of 2 frames" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_infer_stops_on_a_box_file_that_matches_no_image(tmp_path, capsys) -> None:
    """``pose3d.infer`` with an official-layout HRNet file and a converted PoseFormer file."""
    from pose2d.hrnet import PoseHighResolutionNet
    from pose3d.convert import main as convert
    from pose3d.infer import cli
    from tests.test_3d_convert_poseformer import official_file

    det = tmp_path / "pose_hrnet_w8_64x64.pth"
    torch.save(PoseHighResolutionNet(width=8, num_blocks=1, stage_modules=(1, 1, 1),
                                     stem_channels=8).state_dict(), det)  # fmt: skip
    official_file(tmp_path / "pf.bin", 9)
    assert convert(["poseformer", str(tmp_path / "pf.bin"), "--frames", "9",
                    "--out", str(tmp_path / "lift.ckpt")]) == 0  # fmt: skip
    folder = tmp_path / "val2017"
    folder.mkdir()
    for name in ("000000000139.jpg", "000000000285.jpg"):
        cv2.imwrite(str(folder / name), np.full((64, 64, 3), 128, np.uint8))
    boxes = tmp_path / "dets.json"
    results_list(boxes, [(1, [0, 0, 30, 30], 0.9)])  # image id 1: not in the folder
    args = ["--input", str(folder), "--detector", str(det), "--lifter",
            str(tmp_path / "lift.ckpt"), "--no-pictures", "--device", "cpu"]  # fmt: skip
    capsys.readouterr()
    assert cli([*args, "--out", str(tmp_path / "out"), "--boxes", f"coco_json:{boxes}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: box file") and "matches none of the 2 frames" in err
    assert not (tmp_path / "out").exists()
    results_list(boxes, [(285, [0, 0, 30, 30], 0.9)])
    assert cli([*args, "--out", str(tmp_path / "ok"), "--boxes", f"coco_json:{boxes}"]) == 0
    assert "boxes for 1 of 2 frames" in capsys.readouterr().out
    meta = json.loads((tmp_path / "ok" / "results.json").read_text())
    assert meta["missing_frames"] == [0]  # 139 has no box; 285 has
    assert meta["box_source"] == f"coco_json:{boxes}" and len(meta["boxes"]) == 2
