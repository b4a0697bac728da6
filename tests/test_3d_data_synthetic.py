import numpy as np
import pytest

from datamodules.cameras import h36m_camera, project_to_2d, world_to_camera
from datamodules.h36m import H36MDataModule
from datamodules.skeleton import H36M, H36M32_KEPT
from datamodules.synthetic_h36m import generate_synthetic_h36m

SMALL = dict(frames=40, subjects=("S1", "S9"), actions=("Walking", "Sitting", "Greeting"),
             subactions=2)  # fmt: skip


def _load(folder, name, key):
    with np.load(folder / name, allow_pickle=True) as f:
        return f[key].item()


def test_writes_the_videopose3d_formats(tmp_path):
    out = generate_synthetic_h36m(tmp_path, seed=0, **SMALL)
    p3d = _load(out, "data_3d_h36m.npz", "positions_3d")
    assert sorted(p3d) == ["S1", "S9"]
    assert sorted(p3d["S1"]) == ["Greeting 1", "Greeting 2", "Sitting 1", "Sitting 2",
                                 "Walking 1", "Walking 2"]  # fmt: skip
    assert (
        p3d["S1"]["Walking 1"].shape == (40, 32, 3) and p3d["S1"]["Walking 1"].dtype == np.float32
    )
    gt = _load(out, "data_2d_h36m_gt.npz", "positions_2d")
    meta = _load(out, "data_2d_h36m_gt.npz", "metadata")
    assert meta["num_joints"] == 17 and "layout_name" not in meta
    assert len(gt["S9"]["Sitting 2"]) == 4 and gt["S9"]["Sitting 2"][3].shape == (40, 17, 2)
    det = _load(out, "data_2d_h36m_synthetic_det.npz", "positions_2d")
    conf = _load(out, "data_2d_h36m_synthetic_det.npz", "confidences")
    assert det["S1"]["Walking 1"][0].shape == (42, 17, 2)
    assert conf["S1"]["Walking 1"][0].shape == (42, 17)
    # GT 2D = projection of the 17 kept joints through the distorted camera, in pixels
    cam = h36m_camera("S9", 1)
    world = p3d["S9"]["Greeting 1"][:, list(H36M32_KEPT)].astype(np.float64)
    px = project_to_2d(world_to_camera(world, cam.orientation, cam.translation), cam.intrinsic)
    np.testing.assert_allclose(gt["S9"]["Greeting 1"][1], px, atol=1e-3)
    assert 0 < px[..., 0].min() and px[..., 0].max() < 1000 and 0 < px[..., 1].min()
    # detections: a few pixels off the GT, confidences in (0, 1)
    err = np.linalg.norm(det["S1"]["Walking 1"][0][:40] - gt["S1"]["Walking 1"][0], axis=-1)
    assert 1.0 < np.median(err) < 10.0
    assert 0 < conf["S1"]["Walking 1"][0].min() and conf["S1"]["Walking 1"][0].max() < 1


def test_deterministic_by_seed(tmp_path):
    a = _load(generate_synthetic_h36m(tmp_path / "a", seed=3, **SMALL), "data_3d_h36m.npz",
              "positions_3d")  # fmt: skip
    b = _load(generate_synthetic_h36m(tmp_path / "b", seed=3, **SMALL), "data_3d_h36m.npz",
              "positions_3d")  # fmt: skip
    c = _load(generate_synthetic_h36m(tmp_path / "c", seed=4, **SMALL), "data_3d_h36m.npz",
              "positions_3d")  # fmt: skip
    assert all(np.array_equal(a[s][k], b[s][k]) for s in a for k in a[s])
    assert not np.allclose(a["S1"]["Walking 1"], c["S1"]["Walking 1"])
    for name in ("data_2d_h36m_gt.npz", "data_2d_h36m_synthetic_det.npz"):
        da, db = (_load(tmp_path / x, name, "positions_2d") for x in "ab")
        assert np.array_equal(da["S9"]["Sitting 1"][2], db["S9"]["Sitting 1"][2])


def test_skeleton_has_constant_bones_per_subject_and_moves(tmp_path):
    p3d = _load(generate_synthetic_h36m(tmp_path, seed=0, **SMALL), "data_3d_h36m.npz",
                "positions_3d")  # fmt: skip
    parents = np.array(H36M.parents[1:])

    def bones(x):  # (F, 17) bone lengths of the kept joints
        k = x[:, list(H36M32_KEPT)].astype(np.float64)
        return np.linalg.norm(k[:, 1:] - k[:, parents], axis=-1)

    per_subject = {}
    for s in p3d:
        lengths = np.concatenate([bones(v) for v in p3d[s].values()])
        assert lengths.std(0).max() < 1e-5  # constant over time and across actions
        assert 0.05 < lengths.min() and lengths.max() < 0.6
        per_subject[s] = lengths[0]
        # left and right limbs match
        left = [H36M.left.index(j) for j in H36M.left]
        assert np.allclose(lengths[0][np.array(H36M.left) - 1],
                           lengths[0][np.array(H36M.right) - 1][left], atol=1e-6)  # fmt: skip
    assert not np.allclose(per_subject["S1"], per_subject["S9"])
    walk, sit = p3d["S1"]["Walking 1"], p3d["S1"]["Sitting 1"]
    assert np.linalg.norm(walk[-1, 0, :2] - walk[0, 0, :2]) > 0.5  # the root travels
    assert sit[:, 0, 2].mean() < walk[:, 0, 2].mean() - 0.2  # sitting lowers the pelvis
    assert walk[..., 2].min() > -0.05  # nothing below the floor


@pytest.mark.timeout(120)
def test_synthetic_datamodule_generates_prepares_and_loads(tmp_path):
    dm = H36MDataModule(root=str(tmp_path / "syn"), synthetic=True, synthetic_frames=30,
                        frames=9, batch_size=16, num_workers=0)  # fmt: skip
    assert dm.keypoints == "synthetic_det"
    dm.prepare_data()
    dm.setup("fit")
    # 5 subjects × 30 actions × 4 cameras × frames, each window as is and mirrored
    assert len(dm.train_set) == 2 * 5 * 30 * 4 * 30
    assert len(dm.test_set) == 2 * 30 * 4 * 30
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_2d"].shape == (16, 9, 17, 2)
    assert batch["target_3d"][:, :, 0].abs().max() == 0  # root zeroed
    assert batch["input_2d"].abs().max() < 1.5  # normalised screen coordinates
