"""``--people all`` end to end on a rendered two-person clip (person B enters at frame 12) with
tiny random-init networks: two tracks with the right frame ranges and ids, poses only where a
person exists, main-person arrays, pictures with every person."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.frames import open_frames
from datamodules.render_people import render_people_clip
from pose2d.boxes import CocoJsonBoxes
from pose2d.hrnet import PoseHighResolutionNet
from pose2d.topdown import TopDownEstimator
from pose3d.lifter import PoseLifter
from pose3d.people_pipeline import run_people_pipeline, write_people_pictures

FRAMES, ENTER = 24, 12


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return render_people_clip(tmp_path_factory.mktemp("people"), frames=FRAMES, enter=(0, ENTER),
                              scale=0.2)  # fmt: skip


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    det = PoseHighResolutionNet(width=8, num_blocks=1, stage_modules=[1, 1, 1], stem_channels=16,
                                cam_blocks=1).eval()  # fmt: skip
    lifter = PoseLifter(frames=9, spatial_dim=8, spatial_depth=1, temporal_depth=1,
                        spatial_heads=2, temporal_heads=2).eval()  # fmt: skip
    return det, lifter


def test_two_people_one_entering_mid_clip(clip, nets, tmp_path):
    det, lifter = nets
    est = TopDownEstimator(det, (64, 64), flip_test=False, batch_size=16)
    frames = open_frames(clip / "clip.mp4")
    main, arr, timings = run_people_pipeline(
        frames, est, lifter, 9, CocoJsonBoxes(clip / "boxes.json"), src_fps=frames.fps,
        lifter_fps=50.0,
    )  # fmt: skip
    assert timings["tracks"] == 2 and arr["track_ids"].tolist() == [0, 1]
    assert arr["track_frames"].tolist() == [[0, FRAMES], [ENTER, FRAMES]]
    p = arr["track_pose_3d"]
    assert p.shape == (2, FRAMES, 17, 3) and np.isfinite(p[0]).all()
    assert np.isnan(p[1, :ENTER]).all() and np.isfinite(p[1, ENTER:]).all()
    # Each track follows one rendered person: its boxes hold that person's true joints.
    truth = np.load(clip / "truth.npz")
    for k, person in ((0, 0), (1, 1)):
        for f in range(ENTER, FRAMES):
            x, y, w, h = arr["track_boxes"][k, f, :4]
            px = truth["px"][person, f]
            assert (
                (px[:, 0] >= x) & (px[:, 0] <= x + w) & (px[:, 1] >= y) & (px[:, 1] <= y + h)
            ).all()
    assert int(main["main_track"]) == 0 and not main["missing"].any()
    np.testing.assert_allclose(main["pose_3d"], p[0])
    pics = write_people_pictures(frames, arr, main["frame_size"], tmp_path, None, frames.fps, 10)
    assert [q.stem for q in pics.pngs] == ["000000", "000010", "000020"]
    # Colour of track 1 appears only once person B is there.
    import cv2

    from pose3d.draw import track_colour

    def has(stem, tid):
        img = cv2.cvtColor(cv2.imread(str(tmp_path / "frames" / f"{stem}.png")), cv2.COLOR_BGR2RGB)
        return (img.reshape(-1, 3) == track_colour(tid)).all(1).sum() > 20

    assert has("000000", 0) and not has("000000", 1) and has("000020", 1)


def test_two_rendered_people_crossing_keep_their_ids(nets, tmp_path):
    """Two people walk towards each other across the frame and pass (around frame 31): each
    track stays on its person before and after the crossing."""
    frames_n = 40
    clip = render_people_clip(tmp_path / "cross", frames=frames_n,
                              actions=("Greeting", "Directions"),
                              offsets_m=((-1.5, 0.0), (1.5, 0.0)), enter=(0, 0),
                              drift_mps=((2.5, 0.0), (-2.5, 0.0)), scale=0.2)  # fmt: skip
    det, lifter = nets
    est = TopDownEstimator(det, (64, 64), flip_test=False, batch_size=16)
    frames = open_frames(clip / "clip.mp4")
    _, arr, _ = run_people_pipeline(frames, est, lifter, 9, CocoJsonBoxes(clip / "boxes.json"))
    assert arr["track_ids"].tolist() == [0, 1] and arr["track_seen"].all()
    truth = np.load(clip / "truth.npz")["px"][:, :, [11, 12], 0].mean(-1)  # hips' x (2, F)
    gap = truth[0] - truth[1]
    assert gap[0] < -50 and gap[-1] > 10  # they did cross
    centre = arr["track_boxes"][:, :, 0] + arr["track_boxes"][:, :, 2] / 2  # (2, F)
    clear = np.abs(gap) > 6  # frames where the two are apart enough to tell
    for k in range(2):
        near = np.abs(centre[k] - truth[k]) < np.abs(centre[k] - truth[1 - k])
        assert near[clear].all(), (k, np.flatnonzero(~near & clear))
