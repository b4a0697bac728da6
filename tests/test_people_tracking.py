"""``--people all``: the multi-person tracker (crossing people keep their ids, gaps bridged), per-
track arrays (a track that starts mid-clip has poses only where it exists), and the zero-install
keypoint-box fallback (a small person in a large frame)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from datamodules.skeleton import COCO
from pose2d.boxes import FullFrameBoxes
from pose2d.keypoint_boxes import KeypointBoxes, keypoints_box
from pose2d.people_topdown import PeopleFrames, estimate_2d_people
from pose2d.tracking import MultiPersonTracker, track_all_people
from pose3d.tracks import collect_tracks, lift_track, tracks_to_arrays

# A standing person's COCO-17 keypoints in a unit box (x right, y down).
UNIT_POSE = np.array(
    [[0.5, 0.08], [0.53, 0.06], [0.47, 0.06], [0.57, 0.07], [0.43, 0.07], [0.7, 0.2], [0.3, 0.2],
     [0.8, 0.35], [0.2, 0.35], [0.85, 0.5], [0.15, 0.5], [0.62, 0.55], [0.38, 0.55], [0.63, 0.75],
     [0.37, 0.75], [0.64, 0.95], [0.36, 0.95]]
)  # fmt: skip


def person(x: float, y: float, w: float = 60, h: float = 150, arm: float = 0.0):
    """Box ``(5,)`` and keypoints ``(17, 3)`` of a person at ``(x, y)`` (``arm``: wrists up)."""
    kp = UNIT_POSE.copy()
    kp[[9, 10], 1] -= arm
    pts = np.concatenate([kp * [w, h] + [x, y], np.full((17, 1), 0.9)], axis=1)
    return np.array([x, y, w, h, 0.9]), pts


def crossing_clip(frames: int = 40, gap: int | None = None, seed: int = 0):
    """A walks right, B walks left at the same height: their boxes coincide mid-clip. The
    detections come in random order; B is missed at frame ``gap``. Returns boxes, keypoints per
    frame and the truth (which detection is A)."""
    rng = np.random.default_rng(seed)
    boxes, kpts, is_a = [], [], []
    for f in range(frames):
        a = person(20 + 8 * f, 100, arm=0.0)
        b = person(20 + 8 * (frames - 1 - f), 104, arm=0.3)
        ppl = [(a, True)] + ([] if f == gap else [(b, False)])
        order = rng.permutation(len(ppl))
        boxes.append(np.stack([ppl[i][0][0] for i in order]))
        kpts.append(np.stack([ppl[i][0][1] for i in order]))
        is_a.append(np.array([ppl[i][1] for i in order]))
    return boxes, kpts, is_a


@pytest.mark.parametrize("use_keypoints", [False, True])
@pytest.mark.parametrize("gap", [None, 21])
def test_crossing_people_keep_their_ids(use_keypoints, gap):
    boxes, kpts, is_a = crossing_clip(gap=gap)
    ids = track_all_people(boxes, kpts if use_keypoints else None)
    id_a = int(ids[0][is_a[0]][0])
    id_b = int(ids[0][~is_a[0]][0])
    assert id_a != id_b
    for f, (i, a) in enumerate(zip(ids, is_a, strict=True)):
        assert (i[a] == id_a).all() and (i[~a] == id_b).all(), f"frame {f}: {i} {a}"


def test_crossing_without_motion_model_swaps():
    """The velocity prediction is what carries the ids through the crossing: without it
    (momentum 1 keeps the velocity at zero) the ids are not kept — the test can fail."""
    boxes, kpts, is_a = crossing_clip()
    ids = track_all_people(boxes, None, momentum=1.0)
    id_a = int(ids[0][is_a[0]][0])
    assert not all((i[a] == id_a).all() for i, a in zip(ids, is_a, strict=True))


def test_gap_tolerance_and_new_ids():
    t = MultiPersonTracker(max_gap=2)
    b0, _ = person(100, 100)
    assert t.update(b0[None]).tolist() == [0]
    for _ in range(2):
        assert t.update(np.zeros((0, 5))).tolist() == []
    assert t.update(b0[None]).tolist() == [0]  # 2 frames unseen: the same person
    for _ in range(3):
        t.update(np.zeros((0, 5)))
    assert t.update(b0[None]).tolist() == [1]  # 3 > max_gap: a new track, the old id retired
    low = MultiPersonTracker(new_track_score=0.5)
    assert low.update(np.array([[0, 0, 10, 10, 0.3], [50, 0, 10, 10, 0.8]])).tolist() == [-1, 0]


class CopyLifter(nn.Module):
    """Stand-in lifter (sequence head): (x, y, 0) of every frame of the window."""

    frames = 5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, torch.zeros_like(x[..., :1])], dim=-1)


def test_track_appearing_mid_clip_has_poses_only_where_it_exists():
    frames, late = 30, 12
    boxes, kpts = [], []
    for f in range(frames):
        ppl = [person(40 + 2 * f, 60)]
        if f >= late and f != 20:  # B enters at frame 12, missed once at frame 20
            ppl.append(person(400 - 3 * f, 70, arm=0.2))
        boxes.append(np.stack([p[0] for p in ppl]))
        kpts.append(np.stack([p[1] for p in ppl]).astype(np.float32))
    ids = track_all_people(boxes, kpts)
    people = PeopleFrames(boxes, kpts, ids, np.tile([640, 480], (frames, 1)))
    tracks = collect_tracks(people)
    assert [(t.track_id, t.start, t.end) for t in tracks] == [(0, 0, frames), (1, late, frames)]
    assert tracks[1].seen.tolist() == [f != 20 for f in range(late, frames)]
    for t in tracks:
        lift_track(t, people.sizes, CopyLifter(), 5, 25.0, 25.0)
    arr = tracks_to_arrays(tracks, frames)
    assert arr["track_pose_3d"].shape == (2, frames, 17, 3)
    assert arr["track_frames"].tolist() == [[0, frames], [late, frames]]
    p1 = arr["track_pose_3d"][1]
    assert np.isnan(p1[:late]).all() and np.isfinite(p1[late:]).all()  # gap 20 interpolated
    assert np.isfinite(arr["track_pose_3d"][0]).all()
    assert arr["track_seen"][1].tolist() == [late <= f != 20 for f in range(frames)]
    # The lifter saw each track's own 2D: the copy lifter returns B's normalised hip x.
    hip = (kpts[25][1][11, 0] + kpts[25][1][12, 0]) / 2
    assert p1[25, 0, 0] == pytest.approx(hip / 640 * 2 - 1, abs=1e-5)
    # NaN mode: the unseen frame inside the track is NaN too.
    nan = lift_track(tracks[1], people.sizes, CopyLifter(), 5, 25.0, 25.0, missing_mode="nan")
    assert np.isnan(nan.pose_3d[20 - late]).all() and np.isfinite(nan.pose_3d[19 - late]).all()


# --- zero-install fallback: the previous frame's keypoint box -------------------------------
class GridEstimator:
    """Stand-in top-down network with a heatmap-grid resolution: returns the true keypoints of
    the frame snapped to the crop's 48 × 64 heatmap grid (one cell = crop width / 48), score 0.9
    for joints inside the crop, 0 outside (as a resolution-limited detector would)."""

    skeleton, input_size, use_udp = COCO, (192, 256), False

    def __init__(self, truth: np.ndarray) -> None:
        self.truth = truth  # (17, 2) image px
        self.calls = 0

    def from_crops(self, x, centers, scales):
        self.calls += len(x)
        out = []
        for c, s in zip(centers, scales, strict=True):
            cell = s[0] / 48
            origin = c - s / 2
            q = np.round((self.truth - origin) / cell) * cell + origin
            inside = (np.abs(self.truth - c) < s / 2).all(1)
            out.append(np.concatenate([q, np.where(inside, 0.9, 0.0)[:, None]], 1))
        return np.stack(out).astype(np.float32)


def test_keypoint_box_fallback_beats_the_full_frame_for_a_small_person():
    frame = np.zeros((720, 1280, 3), np.uint8)
    _, kp = person(900, 400, w=36, h=90)  # 90 px tall in a 720-px frame
    frames = [(f, "", frame) for f in range(3)]
    errs = {}
    for name, source in (("full", FullFrameBoxes()), ("track", KeypointBoxes())):
        est = GridEstimator(kp[:, :2])
        res = estimate_2d_people(frames, est, source)
        errs[name] = np.abs(res.keypoints[-1][0, :, :2] - kp[:, :2]).max()
        if name == "track":  # frame 0 twice (full frame, then zoomed in), then once per frame
            assert est.calls == 4 and np.isfinite(res.boxes[2]).all()
            assert res.boxes[2][0, 3] < 200  # a crop around the person, not the frame
    assert errs["track"] < errs["full"] / 5, errs


def test_keypoints_box():
    _, kp = person(100, 50, w=40, h=100)
    box = keypoints_box(kp, (640, 480), margin=0.1)
    # Joints span x 106..134, y 56..145; the margin is 0.1 × the larger extent (89) each side.
    np.testing.assert_allclose(box, [97.1, 47.1, 45.8, 106.8, 0.9], rtol=1e-5)
    assert keypoints_box(kp, (120, 480), margin=0.1)[2] == pytest.approx(120 - 97.1, rel=1e-5)
    kp[:, 2] = 0.1  # nothing confident: no box
    assert keypoints_box(kp, (640, 480)) is None


@pytest.mark.parametrize("length", [1, 3])
def test_tracks_shorter_than_the_window(length):
    """A track of 1 or 3 frames with a 5-frame lifter at another frame rate: edge padding gives
    every frame of the track a pose, and only those frames."""
    boxes, kpts = [], []
    for f in range(8):
        here = 2 <= f < 2 + length
        b, k = person(50 + f, 40)
        boxes.append(b[None] if here else np.zeros((0, 5)))
        kpts.append(k[None].astype(np.float32) if here else np.zeros((0, 17, 3), np.float32))
    people = PeopleFrames(boxes, kpts, track_all_people(boxes, kpts), np.tile([320, 240], (8, 1)))
    (track,) = collect_tracks(people)
    lift_track(track, people.sizes, CopyLifter(), 5, 25.0, 50.0)  # resampled to 50 fps and back
    pose = tracks_to_arrays([track], 8)["track_pose_3d"][0]
    assert (
        np.isfinite(pose[2 : 2 + length]).all()
        and np.isnan(np.delete(pose, range(2, 2 + length), 0)).all()
    )
    hip = (kpts[2][0][11, 0] + kpts[2][0][12, 0]) / 2 / 320 * 2 - 1
    assert pose[2, 0, 0] == pytest.approx(hip, abs=1e-5)
