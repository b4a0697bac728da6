"""The inference pipeline's independent parts: windows, tracking, boxes, missing frames, top-down
geometry, drawing and writers (tiny stand-in networks; the real ones are in test_pipeline_real)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from datamodules.skeleton import COCO, H36M, coco_to_h36m, flip_pose
from pose2d.boxes import CocoJsonBoxes, FullFrameBoxes, make_box_source, write_coco_detections
from pose2d.missing import fill_missing
from pose2d.topdown import TopDownEstimator
from pose2d.tracking import box_iou_xywh, track_main_person
from pose2d.transforms import box_to_center_scale
from pose3d.draw import SideBySide, draw_skeleton_2d
from pose3d.outputs import PictureWriter, write_results
from pose3d.windows_infer import lift_sequence, sliding_windows, window_indices


class CentreCopyLifter(nn.Module):
    """Stand-in lifter, sequence head: ``(B, T, J, 2) → (B, T, J, 3)`` = (x, y, 0) per frame."""

    def __init__(self, frames: int) -> None:
        super().__init__()
        self.frames = frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, torch.zeros_like(x[..., :1])], dim=-1)


class MeanLifter(CentreCopyLifter):
    """Stand-in, centre head: ``(B, 1, J, 3)`` = the window mean of (x, y), z = 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).mean(1, keepdim=True)


# --- sliding windows -------------------------------------------------------------------------
def test_window_indices_edge_padding():
    idx = window_indices(5, 3)
    assert idx.tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 4]]
    # Longer window than the sequence: every window starts/ends clamped at 0 / F-1.
    assert window_indices(2, 5).tolist() == [[0, 0, 0, 1, 1], [0, 0, 1, 1, 1]]


def test_sliding_windows_centre_is_the_frame():
    seq = np.arange(7, dtype=np.float32)[:, None, None].repeat(17, 1).repeat(2, 2)
    w = sliding_windows(seq, 5)
    assert w.shape == (7, 5, 17, 2)
    np.testing.assert_array_equal(w[:, 2, 0, 0], np.arange(7))
    np.testing.assert_array_equal(w[0, :, 0, 0], [0, 0, 0, 1, 2])
    np.testing.assert_array_equal(w[-1, :, 0, 0], [4, 5, 6, 6, 6])


@pytest.mark.parametrize("batch", [1, 4, 100])
def test_lift_sequence_every_frame_once(batch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(11, 17, 2)).astype(np.float32)
    out = lift_sequence(CentreCopyLifter(9), x, 9, H36M, batch_size=batch)
    assert out.shape == (11, 17, 3)
    np.testing.assert_allclose(out[..., :2], x, atol=1e-6)  # the centre frame, every frame
    # Centre head: the mean over the edge-padded window, frame 0 = (5·x0 + x1..x4) / 9.
    out = lift_sequence(MeanLifter(9), x, 9, H36M, batch_size=batch)
    want0 = (5 * x[0] + x[1:5].sum(0)) / 9
    np.testing.assert_allclose(out[0, :, :2], want0, atol=1e-5)


def test_lift_sequence_flip_test_of_an_equivariant_lifter_is_a_no_op():
    x = np.random.default_rng(1).normal(size=(6, 17, 2)).astype(np.float32)
    plain = lift_sequence(CentreCopyLifter(3), x, 3, H36M)
    flipped = lift_sequence(CentreCopyLifter(3), x, 3, H36M, flip_test=True)
    np.testing.assert_allclose(plain, flipped, atol=1e-6)


# --- tracking ------------------------------------------------------------------------------------
def test_iou_hand_values():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 10, 10]])
    np.testing.assert_allclose(box_iou_xywh(a, b)[0], [50 / 150, 0.0, 1.0])


def test_tracking_follows_first_main_person_not_the_biggest_later():
    big = [0, 0, 100, 200, 0.9]
    small = [300, 0, 50, 100, 0.9]
    frames = [
        np.array([small, big]),  # big chosen (area × score)
        np.array([[5, 0, 100, 200, 0.9], [200, 0, 150, 300, 0.99]]),  # a bigger one appears
        np.zeros((0, 5)),  # nobody
        np.array([[300, 300, 30, 30, 0.9]]),  # someone elsewhere only: no overlap → missing
        np.array([[8, 2, 100, 200, 0.5]]),  # back near the last box
    ]
    assert track_main_person(frames).tolist() == [1, 0, -1, -1, 0]
    # After more than max_lost frames without a match the track is re-acquired anywhere.
    assert track_main_person(frames, max_lost=0).tolist() == [1, 0, -1, 0, -1]


# --- box sources ---------------------------------------------------------------------------------
def test_coco_json_boxes_by_index_and_by_file_name(tmp_path):
    img = np.zeros((40, 60, 3), np.uint8)
    path = tmp_path / "dets.json"
    write_coco_detections(path, [np.array([[1, 2, 3, 4, 0.9]]), np.zeros((0, 5))])
    src = make_box_source(f"coco_json:{path}")
    np.testing.assert_allclose(src(0, "", img), [[1, 2, 3, 4, 0.9]])
    assert src(1, "", img).shape == (0, 5)
    doc = {
        "images": [{"id": 7, "file_name": "a/b/x.jpg"}],
        "annotations": [
            {"image_id": 7, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.8},
            {"image_id": 7, "category_id": 3, "bbox": [0, 0, 9, 9], "score": 0.99},  # a car
        ],
    }
    path.write_text(json.dumps(doc))
    src = CocoJsonBoxes(path)
    np.testing.assert_allclose(src(0, "x.jpg", img), [[1, 1, 5, 5, 0.8]], rtol=1e-6)
    assert src(0, "y.jpg", img).shape == (0, 5)
    np.testing.assert_allclose(FullFrameBoxes()(0, "", img), [[0, 0, 60, 40, 1]])


def test_box_source_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        make_box_source(f"coco_json:{tmp_path / 'nope.json'}")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        make_box_source(f"coco_json:{bad}")
    with pytest.raises(ValueError, match="unknown box source"):
        make_box_source("yolo")
    src = make_box_source("detector:numpy:atleast_2d")  # any importable callable is a hook
    assert src(0, "", np.zeros((2, 5))).shape == (2, 5)


# --- missing frames ------------------------------------------------------------------------------
def test_fill_missing_interpolates_and_extends_edges():
    x = np.array([np.nan, 2.0, np.nan, np.nan, 8.0, np.nan])[:, None, None]
    m = ~np.isfinite(x[:, 0, 0])
    got = fill_missing(x, m)[:, 0, 0]
    np.testing.assert_allclose(got, [2, 2, 4, 6, 8, 8])
    assert np.isnan(fill_missing(x, m, "nan")[m]).all()
    assert np.isnan(fill_missing(x, np.ones(6, bool))).all()
    with pytest.raises(ValueError, match="missing-frame mode"):
        fill_missing(x, m, "zero")


# --- top-down geometry ---------------------------------------------------------------------------
class BlobNet(nn.Module):
    """Stand-in detector: every joint's heatmap = the crop's brightness sampled at stride 4.

    Standard geometry: heatmap px ``i`` ↔ crop px ``4 i`` (strided sampling). UDP geometry:
    heatmap px ``i`` ↔ crop px ``i (W - 1) / (w - 1)`` (``align_corners=True`` resampling).
    """

    def __init__(self, udp: bool = False) -> None:
        super().__init__()
        self.udp = udp

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = img[:, :1] * 0.229 + 0.485  # undo the ImageNet normalisation: heatmaps in [0, 1]
        if self.udp:
            size = (img.shape[2] // 4, img.shape[3] // 4)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        else:
            x = x[..., ::4, ::4]
        return x.repeat(1, 17, 1, 1)


def _blob_image(x0: float, y0: float, h: int = 240, w: int = 320) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    g = np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 6.0**2))
    return np.repeat((g * 255).astype(np.uint8)[..., None], 3, axis=2)


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("decode", ["standard", "dark", "udp"])
def test_topdown_maps_back_to_image_pixels(flip, decode):
    centres = [(150.0, 100.0), (90.5, 170.0), (230.0, 60.0)]
    images = [_blob_image(*c) for c in centres]
    boxes = np.array([[60, 20, 150, 200], [40, 90, 120, 140], [170, 10, 100, 110]], float)
    net = BlobNet(udp=decode == "udp")
    est = TopDownEstimator(net, (192, 256), flip_test=flip, decode=decode, batch_size=2)
    kp = est(images, boxes)
    assert kp.shape == (3, 17, 3)
    # One heatmap px = scale_w / 48 image px (2.6-3.9 here). Standard decoding (quarter-pixel
    # step) is good to ~0.3 heatmap px; DARK / UDP refine to ~0.01. The official flip-back
    # shift (1 heatmap px where the exact one is 0.75) leaves DARK + flip 0.125 px off in x.
    _, scales = box_to_center_scale(boxes, 192 / 256)
    hm_px = scales[:, 0] / 48
    tol = {"standard": 0.35, "dark": 0.15 if flip else 0.02, "udp": 0.02}[decode] * hm_px
    err = np.abs(kp[:, 0, :2] - np.array(centres)).max(1)
    assert (err < tol).all(), (err, tol)
    assert (kp[..., 2] > 0.1).all()


# --- COCO → H36M → lifter input: left stays left, a mirrored frame swaps it --------------------
def _coco_pose_left_wrist_raised() -> np.ndarray:
    """A frontal person in pixels (the person's left is image right), left wrist above the head."""
    c = COCO.index
    kp = np.zeros((17, 3), np.float32)
    kp[:, 2] = 1.0
    pts = {
        "nose": (100, 50), "left_eye": (104, 46), "right_eye": (96, 46), "left_ear": (108, 48),
        "right_ear": (92, 48), "left_shoulder": (120, 80), "right_shoulder": (80, 80),
        "left_elbow": (130, 50), "right_elbow": (75, 115), "left_wrist": (135, 20),
        "right_wrist": (72, 150), "left_hip": (112, 150), "right_hip": (88, 150),
        "left_knee": (113, 200), "right_knee": (87, 200), "left_ankle": (114, 250),
        "right_ankle": (86, 250),
    }  # fmt: skip
    for name, xy in pts.items():
        kp[c(name), :2] = xy
    return kp


def test_coco_to_h36m_to_lifter_keeps_sides_and_mirroring_swaps_them():
    from pose3d.infer import normalize_per_frame

    coco = _coco_pose_left_wrist_raised()[None]  # (1, 17, 3)
    size = np.array([[200, 300]])
    for frame_kp, raised in (
        (coco, "left_wrist"),
        (flip_pose(coco, COCO, width=200), "right_wrist"),
    ):
        h36m = coco_to_h36m(frame_kp)
        x = normalize_per_frame(h36m[..., :2], size)
        out = lift_sequence(CentreCopyLifter(3), x, 3, H36M)  # the lifter sees (x, y)
        assert H36M.joint_names[int(np.argmin(out[0, :, 1]))] == raised  # y down: min = highest
    # The mirrored pose: H36M right wrist at the mirrored x of the original left wrist.
    m = coco_to_h36m(flip_pose(coco, COCO, width=200))[0]
    assert m[H36M.index("right_wrist"), 0] == pytest.approx(199 - 135)


# --- drawing and writers -------------------------------------------------------------------------
def test_draw_and_side_by_side_shapes():
    img = np.zeros((300, 200, 3), np.uint8)
    kp = _coco_pose_left_wrist_raised()
    drawn = draw_skeleton_2d(img, kp, COCO)
    assert drawn.shape == img.shape and drawn.any() and not img.any()
    # Left limbs blue (R < B), right limbs red: pixel on the left forearm is blue-ish.
    mid = ((kp[COCO.index("left_elbow"), :2] + kp[COCO.index("left_wrist"), :2]) / 2).astype(int)
    r, _, b = drawn[mid[1], mid[0]]
    assert b > r
    pose3d = np.random.default_rng(0).normal(scale=0.3, size=(17, 3))
    panel = SideBySide(H36M, height=240)(img, kp, COCO, pose3d, "t")
    assert panel.shape == (240, 160 + 240, 3) and panel.dtype == np.uint8
    empty = SideBySide(H36M, height=240)(img, None, COCO, None)
    assert empty.shape == panel.shape


def test_writers(tmp_path):
    arrays = {"a": np.array([[1.0, np.nan]], np.float32), "m": np.array([True])}
    npz, js = write_results(tmp_path, "r", arrays, {"n": 1})
    with np.load(npz) as z:  # no pickles needed
        np.testing.assert_array_equal(z["m"], [True])
    doc = json.loads(js.read_text())
    assert doc["a"] == [[1.0, None]] and doc["n"] == 1
    for kind in ("mp4", "gif"):
        pw = PictureWriter(tmp_path / kind, kind, fps=10, png_every=2)
        for i in range(3):
            pw.add(i, np.full((32, 48, 3), 40 * i, np.uint8))
        pw.close()
        assert len(pw.pngs) == 2 and pw.video_path.stat().st_size > 0
