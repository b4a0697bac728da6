"""The whole inference pipeline with the real (tiny, random-init) HRNet and lifter on a short
rendered clip: shapes for every frame, missing frames, files, pictures, checkpoint loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from datamodules.cameras import H36M_CAMERA_IDS
from datamodules.frames import open_frames
from datamodules.render_h36m import render_h36m
from datamodules.synthetic_h36m import generate_synthetic_h36m
from pose2d.boxes import CocoJsonBoxes
from pose2d.hrnet import PoseHighResolutionNet
from pose2d.topdown import TopDownEstimator
from pose3d.infer import main, run_pipeline
from pose3d.lifter import PoseLifter

DET_KW = dict(width=8, num_blocks=1, stage_modules=[1, 1, 1], stem_channels=16, cam_blocks=1)
LIFT_KW = dict(
    frames=9, spatial_dim=8, spatial_depth=1, temporal_depth=1, spatial_heads=2, temporal_heads=2
)
FRAMES = 14


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    generate_synthetic_h36m(
        root / "syn", frames=FRAMES, subjects=("S9",), actions=("Walking",), subactions=1
    )
    render_h36m(root / "syn", root / "render", scale=0.2)
    stem = f"Walking.{H36M_CAMERA_IDS[0]}"
    return (
        root / "render" / "S9" / "Videos" / f"{stem}.mp4",
        root / "render" / "S9" / "Boxes" / f"{stem}.json",
    )


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return PoseHighResolutionNet(**DET_KW).eval(), PoseLifter(**LIFT_KW).eval()


class DropFrames:
    """Box source that finds nobody in some frames (the others: the rendered boxes)."""

    def __init__(self, inner, empty):
        self.inner, self.empty = inner, set(empty)

    def __call__(self, index, name, image):
        return (
            np.zeros((0, 5), np.float32) if index in self.empty else self.inner(index, name, image)
        )


@pytest.mark.parametrize("mode", ["interpolate", "nan"])
def test_pipeline_every_frame_with_empty_frames(clip, nets, mode):
    video, boxes = clip
    det, lifter = nets
    est = TopDownEstimator(det, (64, 64), flip_test=True, batch_size=4)
    empty = [0, 5, 6, FRAMES - 1]  # both ends and a gap
    res = run_pipeline(
        open_frames(video), est, lifter, 9, DropFrames(CocoJsonBoxes(boxes), empty), mode
    )
    assert res.keypoints_2d.shape == (FRAMES, 17, 3) and res.pose_3d.shape == (FRAMES, 17, 3)
    assert res.keypoints_2d_h36m.shape == (FRAMES, 17, 3)
    assert np.flatnonzero(res.missing).tolist() == empty
    ok = ~res.missing
    assert np.isfinite(res.pose_3d[ok]).all() and np.isfinite(res.keypoints_2d[ok]).all()
    if mode == "nan":
        assert np.isnan(res.pose_3d[res.missing]).all()
        assert np.isnan(res.keypoints_2d[res.missing]).all()
    else:
        assert np.isfinite(res.pose_3d).all()
        # Frame 0 repeats frame 1; frames 5, 6 lie on the line between 4 and 7.
        np.testing.assert_allclose(res.keypoints_2d[0], res.keypoints_2d[1])
        want5 = res.keypoints_2d[4] + (res.keypoints_2d[7] - res.keypoints_2d[4]) / 3
        np.testing.assert_allclose(res.keypoints_2d[5], want5, rtol=1e-5, atol=1e-4)
    assert np.isnan(res.boxes[empty]).all() and np.isfinite(res.boxes[ok]).all()


def test_nobody_anywhere_gives_nan_not_a_crash(clip, nets):
    video, _ = clip
    det, lifter = nets
    est = TopDownEstimator(det, (64, 64), flip_test=False)
    res = run_pipeline(open_frames(video), est, lifter, 9, lambda i, n, im: np.zeros((0, 5)))
    assert res.missing.all() and np.isnan(res.pose_3d).all()


def _fake_ckpt(path, model, hparams, extra=None):
    ckpt = {
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "hyper_parameters": hparams,
        **(extra or {}),
    }
    torch.save(ckpt, path)
    return path


def test_cli_from_checkpoints_writes_files_and_pictures(clip, nets, tmp_path, capsys):
    video, boxes = clip
    det, lifter = nets
    d = _fake_ckpt(
        tmp_path / "2d.ckpt", det, DET_KW, {"datamodule_hyper_parameters": {"input_size": [64, 64]}}
    )
    lf = _fake_ckpt(tmp_path / "3d.ckpt", lifter, LIFT_KW)
    out = tmp_path / "out"
    res = main([
        "--input", str(video), "--detector", str(d), "--lifter", str(lf), "--out", str(out),
        "--boxes", f"coco_json:{boxes}", "--png-every", "5", "--flip-3d",
    ])  # fmt: skip
    with np.load(out / "results.npz") as z:  # plain arrays: no pickle
        assert z["pose_3d"].shape == (FRAMES, 17, 3) and z["missing"].shape == (FRAMES,)
        np.testing.assert_allclose(z["pose_3d"], res.pose_3d)
    doc = json.loads((out / "results.json").read_text())
    assert doc["num_frames"] == FRAMES and doc["num_missing"] == 0 and doc["lifter_frames"] == 9
    assert len(doc["keypoints_2d"]) == FRAMES and len(doc["pose_3d"][0]) == 17
    pngs = sorted((out / "frames").glob("*.png"))
    assert [p.stem for p in pngs] == ["000000", "000005", "000010"]
    assert (out / "result.mp4").stat().st_size > 0
    assert "frames/s" in capsys.readouterr().out


def test_image_folder_input_and_errors(clip, nets, tmp_path):
    import cv2

    video, _ = clip
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, _, im in open_frames(video):
        if i < 3:
            cv2.imwrite(str(folder / f"{i:03d}.jpg"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    det, lifter = nets
    est = TopDownEstimator(det, (64, 64), flip_test=False)
    res = run_pipeline(open_frames(folder), est, lifter, 9)
    assert res.pose_3d.shape == (3, 17, 3) and not res.missing.any()
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        open_frames(tmp_path / "nope.mp4")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png"):
        list(open_frames(tmp_path / "bad.png"))


def test_unknown_missing_mode_fails_before_reading_frames(nets):
    """A typo in ``missing_mode`` is reported up front, not after the whole 2D/3D pass."""
    det, lifter = nets

    def frames():
        raise AssertionError("frames were read")
        yield

    est = TopDownEstimator(det, (64, 64), flip_test=False)
    with pytest.raises(ValueError, match="unknown --missing 'zero'"):
        run_pipeline(frames(), est, lifter, 9, missing_mode="zero")
