"""``python -m pose3d.infer`` on the real-footage options: ``--people all`` on a two-person
clip, ``--boxes onnx:`` with a tiny ONNX detector, the ``track`` fallback, frame-rate
resampling, the run summary and the synthetic-checkpoint warning (tiny random-init networks)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from datamodules.render_people import render_people_clip
from pose2d.hrnet import PoseHighResolutionNet
from pose3d.infer import main
from pose3d.lifter import PoseLifter

DET_KW = dict(width=8, num_blocks=1, stage_modules=[1, 1, 1], stem_channels=16, cam_blocks=1)
LIFT_KW = dict(
    frames=9, spatial_dim=8, spatial_depth=1, temporal_depth=1, spatial_heads=2, temporal_heads=2
)
FRAMES, ENTER = 16, 6


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("footage")
    clip = render_people_clip(root / "clip", frames=FRAMES, enter=(0, ENTER), scale=0.2)
    torch.manual_seed(0)
    det, lifter = PoseHighResolutionNet(**DET_KW), PoseLifter(**LIFT_KW)

    def ckpt(path, model, hp, **extra):
        sd = {f"model.{k}": v for k, v in model.state_dict().items()}
        torch.save({"state_dict": sd, "hyper_parameters": hp, **extra}, path)
        return str(path)

    d = ckpt(root / "2d.ckpt", det, DET_KW,
             datamodule_hyper_parameters={"input_size": [64, 64], "synthetic": True})  # fmt: skip
    lf = ckpt(root / "3d.ckpt", lifter, LIFT_KW, frame_rate=50.0)
    return clip, d, lf


def _run(setup, tmp_path, *args):
    clip, d, lf = setup
    out = tmp_path / "out"
    res = main(["--input", str(clip / "clip.mp4"), "--detector", d, "--lifter", lf,
                "--out", str(out), "--no-flip-2d", *args])  # fmt: skip
    return res, out, json.loads((out / "results.json").read_text())


def test_people_all_writes_tracks_and_pictures(setup, tmp_path, capsys):
    clip = setup[0]
    res, out, doc = _run(setup, tmp_path, "--people", "all", "--boxes",
                         f"coco_json:{clip / 'boxes.json'}", "--png-every", "5",
                         "--video", "none")  # fmt: skip
    printed = capsys.readouterr().out
    assert "people:   all" in printed and "boxes:    coco_json:" in printed
    assert "warning: the detector" in printed and "synthetic" in printed  # demo-style checkpoint
    assert "warning: the lifter" not in printed
    with np.load(out / "results.npz") as z:
        assert z["track_ids"].tolist() == [0, 1] and int(z["main_track"]) == 0
        assert z["track_frames"].tolist() == [[0, FRAMES], [ENTER, FRAMES]]
        assert np.isnan(z["track_pose_3d"][1, :ENTER]).all()
        assert np.isfinite(z["track_pose_3d"][1, ENTER:]).all()
        assert z["pose_3d"].shape == (FRAMES, 17, 3) and np.isfinite(z["pose_3d"]).all()
    assert doc["people"] == "all" and doc["num_tracks"] == 2 and len(doc["track_pose_3d"]) == 2
    assert [p.stem for p in res.files["pngs"]] == ["000000", "000005", "000010", "000015"]
    assert res.files["video"] is None


def test_frame_rate_is_read_and_resampled(setup, tmp_path, capsys):
    _, _, doc = _run(setup, tmp_path, "--no-pictures")  # a 50 fps clip, a 50 fps lifter
    assert doc["fps"] == 50 and doc["fps_source"] == "video" and doc["resampled"] is False
    _, _, doc = _run(setup, tmp_path, "--no-pictures", "--fps", "25")
    assert doc["fps"] == 25 and doc["resampled"] is True and doc["lifter_fps"] == 50
    assert "25 → 50 fps for lifting" in capsys.readouterr().out
    res, _, doc = _run(setup, tmp_path, "--no-pictures", "--fps", "25", "--no-resample")
    assert doc["resampled"] is False and res.pose_3d.shape == (FRAMES, 17, 3)


def test_track_fallback_boxes(setup, tmp_path, capsys):
    res, _, _ = _run(setup, tmp_path, "--no-pictures", "--boxes", "track", "--min-score", "0")
    assert "boxes:    track (previous frame's keypoint box" in capsys.readouterr().out
    assert res.pose_3d.shape == (FRAMES, 17, 3) and np.isfinite(res.boxes).all()


def test_onnx_detector_boxes(setup, tmp_path, capsys):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from test_onnx_detector import end2end_model

    model = end2end_model(tmp_path, size=(64, 64))  # 5 detections, 2 of them persons ≥ 0.3
    res, _, doc = _run(setup, tmp_path, "--no-pictures", "--people", "all", "--boxes",
                       f"onnx:{model},score=0.5")  # fmt: skip
    assert "boxes:    onnx e2e.onnx (end2end, 64x64" in capsys.readouterr().out
    assert doc["num_tracks"] >= 1 and res.pose_3d.shape == (FRAMES, 17, 3)
