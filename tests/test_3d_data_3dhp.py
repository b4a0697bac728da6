import numpy as np
import pytest

from datamodules.mpi_inf_3dhp import MPIINF3DHPDataModule, prepare_3dhp
from datamodules.sequence_cache import read_cache
from datamodules.skeleton import MPI_INF_3DHP

TEST_FRAMES = {"TS1": 6, "TS2": 5, "TS3": 4, "TS4": 4, "TS5": 7, "TS6": 5}


def write_fixture(root):
    rng = np.random.default_rng(0)

    def seq(n):
        return {"data_2d": rng.uniform(0, 2048, (n, 17, 2)),
                "data_3d": rng.normal(0, 400.0, (n, 17, 3))}  # fmt: skip

    train = {"S1 Seq1": [{0: seq(8), 2: seq(8)}, 50], "S2 Seq2": [{0: seq(5)}, 25]}
    test = {}
    for name, n in TEST_FRAMES.items():
        test[name] = dict(seq(n), valid=(np.arange(n) % 2 == 0).astype(np.float64))
    root.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(root / "data_train_3dhp.npz", data=train)
    np.savez_compressed(root / "data_test_3dhp.npz", data=test)
    return train, test


def test_prepare_units_resolution_and_root(tmp_path):
    train, test = write_fixture(tmp_path)
    cache = read_cache(prepare_3dhp(tmp_path))
    names = [(r["split"], r["name"], r["camera"]) for r in cache.sequences]
    assert names[:3] == [("train", "S1 Seq1", "0"), ("train", "S1 Seq1", "2"),
                         ("train", "S2 Seq2", "0")]  # fmt: skip
    assert [n for s, n, _ in names if s == "test"] == list(TEST_FRAMES)
    assert cache.sequences[2]["fps"] == 25.0
    root = MPI_INF_3DHP.root
    for i, r in enumerate(cache.sequences):
        rows = slice(cache.offsets[i], cache.offsets[i] + cache.lengths[i])
        src = train[r["name"]][0][int(r["camera"])] if r["split"] == "train" else test[r["name"]]
        w, h = (1920, 1080) if r["name"] in ("TS5", "TS6") else (2048, 2048)
        assert (r["res_w"], r["res_h"]) == (w, h)
        np.testing.assert_allclose(cache.pos2d[rows], src["data_2d"] / w * 2 - [1, h / w],
                                   atol=1e-6)  # fmt: skip
        d3 = src["data_3d"] / 1000.0
        np.testing.assert_allclose(cache.pos3d[rows], d3 - d3[:, root : root + 1], atol=1e-6)
        assert np.all(cache.pos3d[rows][:, root] == 0.0)
        expect_valid = np.ones(len(d3), bool) if r["split"] == "train" else src["valid"] > 0
        assert np.array_equal(cache.valid[rows], expect_valid)


def test_datamodule_scores_only_valid_test_frames(tmp_path):
    write_fixture(tmp_path)
    dm = MPIINF3DHPDataModule(root=str(tmp_path), frames=3, batch_size=4, num_workers=0)
    with pytest.raises(FileNotFoundError, match="mpi_inf_3dhp prepare"):
        dm.setup("fit")
    dm.prepare_data()  # never unpickles: the cache is still missing
    assert not (tmp_path / "cache").exists()
    prepare_3dhp(tmp_path)
    dm = MPIINF3DHPDataModule(root=str(tmp_path), frames=3, batch_size=4, eval_batch_size=100,
                              num_workers=0)  # fmt: skip
    dm.setup("fit")
    assert dm.group_names == list(TEST_FRAMES) and dm.skeleton.name == "mpi_inf_3dhp"
    assert dm.train_group_names == ["S1 Seq1", "S2 Seq2"]
    assert len(dm.train_set) == 2 * (8 + 8 + 5)  # each window as is and mirrored
    batch = next(iter(dm.test_dataloader()))
    n_valid = sum((n + 1) // 2 for n in TEST_FRAMES.values())
    assert len(batch["index"]) == n_valid
    assert (batch["frame"] % 2 == 0).all()  # only the valid (even) frames are centres
    ts = [dm.group_names[a] for a in batch["action"].tolist()]
    assert ts.count("TS5") == 4 and ts.count("TS1") == 3
    train = next(iter(dm.train_dataloader()))
    assert train["input_2d"].shape == (4, 3, 17, 2)
    assert set(train["action"].tolist()) <= {0, 1}


def test_missing_3dhp_names_files_and_synthetic(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        MPIINF3DHPDataModule(root=str(tmp_path / "x")).setup("fit")
    for needle in ("data_train_3dhp.npz", "data_test_3dhp.npz", "prepare", "DATA=synthetic"):
        assert needle in str(err.value)
