import numpy as np
import pytest
import torch

from datamodules.cameras import h36m_camera, normalize_screen_coordinates, world_to_camera
from datamodules.h36m import H36MDataModule, prepare_h36m
from datamodules.sequence_cache import read_cache
from datamodules.skeleton import H36M32_KEPT, H36M_ACTIONS

# (subject, action, mocap frames); S11 "Directions" must be skipped
FIXTURE = [("S1", "Walking", 7), ("S1", "Directions 1", 5), ("S9", "Eating 2", 6),
           ("S11", "Directions", 4), ("S11", "Walking 1", 3)]  # fmt: skip
EXTRA_2D = 3  # detections longer than the mocap are truncated


def write_fixture(root, source="cpn_test", short=None, confidences=False):
    rng = np.random.default_rng(0)
    p3d, p2d, conf = {}, {}, {}
    for subject, action, n in FIXTURE:
        world = rng.normal(0, 0.3, (n, 32, 3)) + [0.0, 0.0, 1.0]
        p3d.setdefault(subject, {})[action] = world.astype(np.float32)
        m = n - 1 if (subject, action) == short else n + EXTRA_2D
        p2d.setdefault(subject, {})[action] = [
            rng.uniform(0, 1000, (m, 17, 2)).astype(np.float32) for _ in range(4)
        ]
        conf.setdefault(subject, {})[action] = [rng.uniform(size=(m, 17)) for _ in range(4)]
    root.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(root / "data_3d_h36m.npz", positions_3d=p3d)
    extra = {"confidences": conf} if confidences else {}
    np.savez_compressed(
        root / f"data_2d_h36m_{source}.npz",
        positions_2d=p2d,
        metadata={"num_joints": 17, "keypoints_symmetry": [[], []]},
        **extra,
    )
    return p3d, p2d, conf


def test_prepare_matches_the_videopose3d_processing(tmp_path):
    p3d, p2d, conf = write_fixture(tmp_path, confidences=True)
    cache = read_cache(prepare_h36m(tmp_path, "cpn_test"))
    keys = [(r["subject"], r["action"], r["camera"]) for r in cache.sequences]
    assert len(keys) == 4 * 4  # 5 sequences, S11 Directions skipped, 4 cameras each
    assert not any(s == "S11" and a == "Directions" for s, a, _ in keys)
    assert cache.meta["source"] == "cpn_test" and cache.conf is not None
    for i, r in enumerate(cache.sequences):
        c = ["54138969", "55011271", "58860488", "60457274"].index(r["camera"])
        cam = h36m_camera(r["subject"], c)
        world = p3d[r["subject"]][r["action"]].astype(np.float64)
        n = len(world)
        assert r["length"] == n and r["group"] == r["action"].split(" ")[0]
        rows = slice(cache.offsets[i], cache.offsets[i] + n)
        kp = p2d[r["subject"]][r["action"]][c][:n].astype(np.float64)
        expect2d = normalize_screen_coordinates(kp, cam.res_w, cam.res_h)
        np.testing.assert_allclose(cache.pos2d[rows], expect2d, rtol=0, atol=1e-6)
        xc = world_to_camera(world[:, list(H36M32_KEPT)], cam.orientation, cam.translation)
        np.testing.assert_allclose(cache.pos3d[rows], xc - xc[:, :1], rtol=0, atol=1e-6)
        assert np.all(cache.pos3d[rows][:, 0] == 0.0)
        np.testing.assert_allclose(
            cache.conf[rows], conf[r["subject"]][r["action"]][c][:n], atol=1e-7
        )


def test_2d_shorter_than_mocap_is_an_error(tmp_path):
    write_fixture(tmp_path, short=("S9", "Eating 2"))
    with pytest.raises(ValueError, match=r"data_2d_h36m_cpn_test\.npz.*S9.*Eating 2"):
        prepare_h36m(tmp_path, "cpn_test")


def test_missing_dataset_gives_one_clear_error(tmp_path):
    dm = H36MDataModule(root=str(tmp_path / "h36m"))
    with pytest.raises(FileNotFoundError) as err:
        dm.setup("fit")
    msg = str(err.value)
    for needle in (
        "data_3d_h36m.npz",
        "data_2d_h36m_cpn_ft_h36m_dbb.npz",
        "prepare",
        "DATA=synthetic",
        str(tmp_path / "h36m"),
    ):
        assert needle in msg
    with pytest.raises(FileNotFoundError, match="data_3d_h36m.npz"):
        prepare_h36m(tmp_path / "h36m", "cpn_ft_h36m_dbb")


def test_raw_files_without_cache_ask_for_the_explicit_prepare(tmp_path):
    write_fixture(tmp_path)
    dm = H36MDataModule(root=str(tmp_path), keypoints="cpn_test")
    with pytest.raises(FileNotFoundError, match="datamodules.h36m prepare"):
        dm.check_files("fit")
    dm.prepare_data()  # never unpickles the user's files
    assert not (tmp_path / "cache").exists()


def test_datamodule_splits_and_scores_every_test_frame_once(tmp_path):
    write_fixture(tmp_path)
    prepare_h36m(tmp_path, "cpn_test")
    dm = H36MDataModule(root=str(tmp_path), keypoints="cpn_test", frames=5, batch_size=4,
                        eval_batch_size=7, num_workers=0, train_subjects=("S1",),
                        test_subjects=("S9", "S11"), stride=2)  # fmt: skip
    dm.setup("fit")
    assert dm.group_names == list(H36M_ACTIONS) and dm.skeleton.name == "h36m"
    # train: S1 Walking (7 frames, stride 2 → 4) + Directions 1 (5 → 3), 4 cameras, each
    # window twice (as is and mirrored: flip_mode="double")
    assert len(dm.train_set) == 2 * 4 * (4 + 3)
    test = list(dm.test_dataloader())
    pairs = torch.stack([torch.cat([b["seq"] for b in test]),
                         torch.cat([b["frame"] for b in test])], 1)  # fmt: skip
    assert len(pairs) == 4 * (6 + 3) and len(torch.unique(pairs, dim=0)) == len(pairs)
    assert torch.cat([b["index"] for b in test]).tolist() == list(range(len(pairs)))
    batch = test[0]
    assert batch["input_2d"].shape == (7, 5, 17, 2) and batch["target_3d"].shape == (7, 5, 17, 3)
    assert batch["action"][0].item() == H36M_ACTIONS.index("Eating")
    train = next(iter(dm.train_dataloader()))
    assert train["input_2d"].shape == (4, 5, 17, 2)
    with pytest.raises(ValueError, match="S7"):
        H36MDataModule(root=str(tmp_path), keypoints="cpn_test", train_subjects=("S7",)).setup()
