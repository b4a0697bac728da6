"""Result pictures people can open: H.264 MP4 through imageio-ffmpeg (or mp4v with a notice),
GIF, atomic files; 3D panels with axes fixed over the clip, a ground plane, a camera view; all
people drawn with their track colours."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from datamodules.skeleton import COCO, H36M
from pose3d.draw import SideBySide, draw_people_2d, track_colour
from pose3d.video_writer import VideoWriter


def _frames(n: int = 5, h: int = 33, w: int = 47):
    return [np.full((h, w, 3), 40 * i, np.uint8) for i in range(n)]


def _count(path) -> int:
    cap, n = cv2.VideoCapture(str(path)), 0
    while cap.read()[0]:
        n += 1
    return n


def test_h264_mp4(tmp_path):
    ffmpeg = pytest.importorskip("imageio_ffmpeg")
    vw = VideoWriter(tmp_path / "result.mp4", fps=10, notice=pytest.fail)
    for f in _frames():
        vw.add(f)
    assert vw.close() == tmp_path / "result.mp4" and vw.codec == "h264"
    assert [p.name for p in tmp_path.iterdir()] == ["result.mp4"]  # no temporary file left
    meta = next(ffmpeg.read_frames(str(tmp_path / "result.mp4")))
    assert meta["codec"] == "h264" and meta["size"] == (48, 34)  # padded to even sizes
    assert _count(tmp_path / "result.mp4") == 5


def test_mp4v_fallback_with_one_line_notice(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    notes = []
    vw = VideoWriter(tmp_path / "result.mp4", fps=10, notice=notes.append)
    for f in _frames():
        vw.add(f)
    vw.close()
    assert vw.codec == "mp4v" and len(notes) == 1 and "[video]" in notes[0]
    assert _count(tmp_path / "result.mp4") == 5


def test_gif_and_abort(tmp_path):
    from PIL import Image

    vw = VideoWriter(tmp_path / "result.gif", fps=5, kind="gif")
    for f in _frames(3):
        vw.add(f)
    vw.close()
    with Image.open(tmp_path / "result.gif") as im:
        assert im.n_frames == 3 and im.info["duration"] == 200
    broken = VideoWriter(tmp_path / "broken.mp4", fps=5)
    broken.add(_frames(1)[0])
    broken.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.gif"]
    assert VideoWriter(tmp_path / "none.mp4", fps=5).close() is None  # no frames, no file


def _pose() -> np.ndarray:
    rng = np.random.default_rng(0)
    p = rng.normal(scale=0.25, size=(17, 3))
    return p - p[0]


def test_3d_axes_fixed_over_the_clip_ground_and_views():
    a = _pose()
    moved = a + [0.4, 0.0, 0.0]
    # Default (no fitted limits): each pose is centred on its root, a shift is invisible.
    free = SideBySide(H36M, height=100)
    np.testing.assert_array_equal(free.plot_3d(a), free.plot_3d(moved))
    fixed = SideBySide(H36M, height=100)
    fixed.fit_limits(np.stack([a, moved]))
    lo, hi = fixed.lo.copy(), fixed.hi.copy()
    assert fixed.ground == pytest.approx(max(a[:, 1].max(), moved[:, 1].max()))
    img_a, img_m = fixed.plot_3d(a), fixed.plot_3d(moved)
    assert np.abs(img_a.astype(int) - img_m).sum() > 0  # the person moves, the axes do not
    np.testing.assert_array_equal(fixed.lo, lo)
    np.testing.assert_array_equal(fixed.hi, hi)
    cam = SideBySide(H36M, height=100, view="camera")
    cam.fit_limits(np.stack([a, moved]))
    assert np.abs(cam.plot_3d(a).astype(int) - img_a).sum() > 0
    with pytest.raises(ValueError, match="unknown view"):
        SideBySide(H36M, view="front")


def test_people_drawn_in_track_colours():
    img = np.zeros((200, 300, 3), np.uint8)
    kp = np.zeros((17, 3), np.float32)
    kp[:, 0], kp[:, 1], kp[:, 2] = np.linspace(20, 80, 17), np.linspace(20, 180, 17), 1.0
    other = kp.copy()
    other[:, 0] += 180
    out = draw_people_2d(img, [(0, kp, None), (3, other, np.array([190, 10, 80, 180, 1.0]))], COCO)
    left, right = out[:, :120].reshape(-1, 3), out[:, 150:].reshape(-1, 3)
    assert (left == track_colour(0)).all(1).any() and not (left == track_colour(3)).all(1).any()
    assert (right == track_colour(3)).all(1).any()
    panel = SideBySide(H36M, height=100)
    panel.fit_limits(np.stack([_pose(), _pose() + [1.0, 0, 0]]))
    pic = panel.people(img, [(0, kp, None, _pose()), (3, other, None, _pose() + [1.0, 0, 0])], COCO)
    assert pic.shape == (100, 150 + 100, 3)
