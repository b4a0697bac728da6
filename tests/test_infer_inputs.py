"""pose3d.infer on damaged inputs: an unreadable image in a folder is a listed missing frame, a
bad video is one line, and full-frame boxes with nobody in them give missing frames."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from pose2d.hrnet import PoseHighResolutionNet
from pose2d.topdown import TopDownEstimator
from pose3d.infer import cli, main, run_pipeline
from pose3d.lifter import PoseLifter
from tests.tiny_checkpoints import DET_KW, LIFT_KW, write_tiny_checkpoints


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    return write_tiny_checkpoints(tmp_path_factory.mktemp("ckpt"))


def _folder(tmp_path, n=5, bad=(2,)):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        path = folder / f"{i:03d}.png"
        if i in bad:
            path.write_bytes(b"truncated download")
        else:
            cv2.imwrite(str(path), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    return folder


def test_bad_image_in_a_folder_is_a_listed_missing_frame(ckpts, tmp_path, capsys):
    det, lift = ckpts
    folder, out = _folder(tmp_path), tmp_path / "out"
    res = main(["--input", str(folder), "--detector", str(det), "--lifter", str(lift),
                "--out", str(out), "--min-score", "0", "--no-pictures"])  # fmt: skip
    assert res.missing.tolist() == [False, False, True, False, False]
    assert np.isfinite(res.pose_3d).all()  # interpolated over the gap
    doc = json.loads((out / "results.json").read_text())
    assert doc["num_frames"] == 5 and doc["missing_frames"] == [2]
    assert doc["unreadable_frames"] == [{
        "frame": 2, "file": "002.png",
        "reason": f"cannot decode image {folder / '002.png'} (18 bytes)",
    }]  # fmt: skip
    assert "5 frames, 1 missing [2] (1 unreadable)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "expect"),
    [(b"", "(empty file)"), (b"\x00\x01garbage" * 100, "(missing codec or corrupt file)")],
)
def test_bad_video_is_one_line(ckpts, tmp_path, capsys, content, expect):
    det, lift = ckpts
    video, out = tmp_path / "clip.mp4", tmp_path / "out"
    video.write_bytes(content)
    rc = cli(["--input", str(video), "--detector", str(det), "--lifter", str(lift),
              "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and not out.exists()
    assert err == (
        f"error: cannot open video {video} {expect}; re-encode it (e.g. ffmpeg -i IN -c:v "
        "libx264 OUT.mp4) or pass a folder of images\n"
    )


def test_full_frame_boxes_without_a_person_are_missing(ckpts, tmp_path):
    from datamodules.frames import open_frames

    torch.manual_seed(0)
    det = PoseHighResolutionNet(**DET_KW).eval()  # untrained: heatmap peaks ≈ 0
    est = TopDownEstimator(det, (64, 64), flip_test=False)
    frames = open_frames(_folder(tmp_path, n=4, bad=()))
    lifter = PoseLifter(**LIFT_KW).eval()
    res = run_pipeline(frames, est, lifter, 3)
    score = res.keypoints_2d[..., 2].mean(axis=1)
    assert not res.missing.any() and (score < 0.1).all()  # confident-looking poses today
    cut = float(np.sort(score)[1:3].mean())  # between the 2nd and 3rd lowest: two frames out
    res = run_pipeline(frames, est, lifter, 3, min_score=cut)
    assert res.low_score.tolist() == (score < cut).tolist() and res.low_score.sum() == 2
    assert res.missing.tolist() == res.low_score.tolist()
    res = run_pipeline(frames, est, lifter, 3, missing_mode="nan", min_score=0.1)
    assert res.missing.all() and np.isnan(res.pose_3d).all()
