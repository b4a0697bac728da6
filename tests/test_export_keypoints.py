"""Table V path on a tiny synthetic set: render → detect → VideoPose3D npz → the 3D prepare step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from datamodules.cameras import H36M_CAMERA_IDS, h36m_camera
from datamodules.render_h36m import coco_points_3d, render_h36m
from datamodules.skeleton import COCO, H36M
from datamodules.synthetic_h36m import generate_synthetic_h36m
from pose2d.export_keypoints import export_keypoints, find_videos
from pose2d.topdown import TopDownEstimator


class BoxCentreEstimator(TopDownEstimator):
    """Stand-in: every joint at the crop centre (= the box centre), score 0.5."""

    def __init__(self) -> None:
        super().__init__(torch.nn.Identity(), (48, 64), flip_test=False)

    def from_crops(self, x, centers, scales):
        kp = np.repeat(centers[:, None, :], 17, axis=1)
        return np.concatenate([kp, np.full(kp.shape[:2] + (1,), 0.5)], -1).astype(np.float32)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("h36m")
    generate_synthetic_h36m(
        root / "syn", frames=12, subjects=("S1", "S9"), actions=("Walking",), subactions=1
    )
    return render_h36m(root / "syn", root / "render", scale=0.2)


def test_face_points_follow_the_body_left(rendered):
    from datamodules.sequence_cache import load_pickled_npz
    from datamodules.skeleton import H36M32_KEPT

    world = load_pickled_npz(rendered / "data_3d_h36m.npz", "positions_3d")["S1"]["Walking"]
    pts = coco_points_3d(np.asarray(world, np.float64)[:, list(H36M32_KEPT)])
    hips = pts[:, COCO.index("left_hip")] - pts[:, COCO.index("right_hip")]
    for part in ("eye", "ear"):
        d = pts[:, COCO.index(f"left_{part}")] - pts[:, COCO.index(f"right_{part}")]
        assert ((d * hips).sum(-1) > 0).all()


def test_render_layout(rendered):
    videos = find_videos(rendered)
    assert set(videos) == {"S1", "S9"} and set(videos["S1"]) == {"Walking"}
    assert [v.stem.split(".")[1] for v in videos["S9"]["Walking"]] == list(H36M_CAMERA_IDS)
    boxes = json.loads(
        (rendered / "S1" / "Boxes" / f"Walking.{H36M_CAMERA_IDS[0]}.json").read_text()
    )
    assert len(boxes) == 12 and {b["image_id"] for b in boxes} == set(range(12))


def test_export_format_and_camera_pixel_scaling(rendered, tmp_path):
    path = export_keypoints(rendered, BoxCentreEstimator(), "centres", out=tmp_path)
    assert path.name == "data_2d_h36m_centres.npz"
    with np.load(path, allow_pickle=True) as z:  # the public (pickled) VideoPose3D format
        pos, conf, meta = (z[k].item() for k in ("positions_2d", "confidences", "metadata"))
    assert meta == {
        "layout_name": "h36m", "num_joints": 17,
        "keypoints_symmetry": [list(H36M.left), list(H36M.right)],
    }  # fmt: skip
    for c in range(4):
        xy, q = pos["S9"]["Walking"][c], conf["S9"]["Walking"][c]
        assert xy.shape == (12, 17, 2) and xy.dtype == np.float32 and q.shape == (12, 17)
        np.testing.assert_allclose(q, 0.5)
        # Box centres in the 0.2-scale video, rescaled to the camera's native pixels.
        cam = h36m_camera("S9", c)
        boxes = json.loads((rendered / "S9" / "Boxes" / f"Walking.{cam.id}.json").read_text())
        b = np.array([d["bbox"] for d in boxes])
        size = np.array([round(cam.res_w * 0.2), round(cam.res_h * 0.2)])
        want = (b[:, :2] + b[:, 2:] / 2) * np.array([cam.res_w, cam.res_h]) / size
        np.testing.assert_allclose(xy[:, 0], want, rtol=1e-5)


def test_exported_file_feeds_the_3d_prepare_step(rendered, tmp_path):
    from datamodules.h36m import prepare_h36m
    from datamodules.sequence_cache import read_cache
    from pose2d.hrnet import PoseHighResolutionNet

    torch.manual_seed(0)
    net = PoseHighResolutionNet(width=8, num_blocks=1, stage_modules=(1, 1, 1), stem_channels=16)
    est = TopDownEstimator(net, (64, 64), flip_test=False)
    export_keypoints(rendered, est, "tiny")
    cache = read_cache(prepare_h36m(rendered, "tiny"))
    # 2 subjects × 1 action × 4 cameras of 12 frames, normalised 2D in the screen range.
    assert cache.lengths.tolist() == [12] * 8 and cache.conf.shape == (96, 17)
    assert np.isfinite(np.asarray(cache.pos2d)).all()


def test_missing_camera_is_named(rendered, tmp_path):
    import shutil

    root = tmp_path / "broken"
    shutil.copytree(rendered / "S1", root / "S1")
    (root / "S1" / "Videos" / f"Walking.{H36M_CAMERA_IDS[2]}.mp4").unlink()
    with pytest.raises(FileNotFoundError, match=H36M_CAMERA_IDS[2]):
        find_videos(root)
    with pytest.raises(FileNotFoundError, match="S\\*/Videos"):
        find_videos(tmp_path / "empty")
