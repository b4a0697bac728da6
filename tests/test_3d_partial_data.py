"""Partial downloads: evaluation needs only the evaluation subjects / test sequences, training
only the training ones; what is absent is said, and only what is present is scored."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import pytorch_lightning as pl

from callbacks.user_error import UserError
from datamodules.h36m import H36MDataModule
from datamodules.mpi_inf_3dhp import MPIINF3DHPDataModule, prepare_3dhp
from datamodules.sequence_cache import read_cache
from datamodules.synthetic_h36m import generate_synthetic_h36m
from pose3d.module import LiftingModule

ACTIONS = ("Walking", "Eating")


def h36m(tmp_path, subjects: tuple[str, ...]) -> H36MDataModule:
    root = generate_synthetic_h36m(tmp_path / "h36m", frames=20, subjects=subjects,
                                   actions=ACTIONS, subactions=1)  # fmt: skip
    return H36MDataModule(root=str(root), keypoints="synthetic_det", frames=9, batch_size=16,
                          eval_batch_size=10_000, num_workers=0)  # fmt: skip


def _subjects(dm: H36MDataModule, dataset) -> set[str]:
    seqs = dataset.cache.sequences
    return {seqs[s]["subject"] for s in np.unique(dataset.seq)}


@pytest.mark.parametrize("subjects", [("S9", "S11"), ("S9",)])
def test_h36m_evaluates_a_cache_with_evaluation_subjects_only(tmp_path, subjects) -> None:
    dm = h36m(tmp_path, subjects)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm.setup("test")
    absent = [str(w.message) for w in caught if "absent" in str(w.message)]
    assert len(absent) == (len(subjects) == 1)  # only S9: S11 is announced absent
    assert _subjects(dm, dm.test_set) == set(subjects)
    batch = next(iter(dm.test_dataloader()))
    assert len(batch["index"]) == len(subjects) * len(ACTIONS) * 4 * 20  # every frame once
    with pytest.raises(UserError, match="none of the training subjects S1, S5, S6, S7, S8"):
        dm.setup("fit")


def test_h36m_missing_evaluation_subject_is_announced(tmp_path) -> None:
    dm = h36m(tmp_path, ("S9",))
    with pytest.warns(UserWarning, match="evaluation subjects S11 absent; evaluation on S9 only"):
        dm.setup("validate")


def test_h36m_trains_without_evaluation_subjects(tmp_path) -> None:
    dm = h36m(tmp_path, ("S1", "S5"))
    with pytest.warns(UserWarning, match="S6, S7, S8 absent"):
        dm.setup("fit")
    assert _subjects(dm, dm.train_set) == {"S1", "S5"} and dm.val_dataloader() == []
    model = LiftingModule(frames=9, spatial_dim=8, spatial_depth=1, temporal_depth=1,
                          spatial_heads=2, temporal_heads=4, sam_groups=2)  # fmt: skip
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False)  # fmt: skip
    trainer.fit(model, dm)  # no validation loop, no error
    assert trainer.global_step == 2
    dm = h36m(tmp_path, ("S1", "S5"))
    with pytest.raises(UserError, match="none of the evaluation subjects S9, S11"):
        dm.setup("test")


def write_3dhp(root, train: dict[str, int] | None, test: dict[str, int] | None) -> None:
    rng = np.random.default_rng(0)

    def seq(n):
        return {"data_2d": rng.uniform(0, 2048, (n, 17, 2)),
                "data_3d": rng.normal(0, 400.0, (n, 17, 3))}  # fmt: skip

    root.mkdir(parents=True, exist_ok=True)
    if train is not None:
        data = {name: [{0: seq(n)}, 50] for name, n in train.items()}
        np.savez_compressed(root / "data_train_3dhp.npz", data=data)
    if test is not None:
        data = {name: dict(seq(n), valid=np.ones(n)) for name, n in test.items()}
        np.savez_compressed(root / "data_test_3dhp.npz", data=data)


def test_3dhp_any_subset_of_test_sequences(tmp_path, capsys) -> None:
    write_3dhp(tmp_path, None, {"TS1": 5, "TS3": 4, "TS6": 3})
    cache = read_cache(prepare_3dhp(tmp_path))
    out = capsys.readouterr().out
    assert "train subjects none (absent: S1 S2 S3 S4 S5 S6 S7 S8)" in out
    assert "test sequences TS1 TS3 TS6 (absent: TS2 TS4 TS5)" in out
    assert [r["name"] for r in cache.sequences] == ["TS1", "TS3", "TS6"]
    dm = MPIINF3DHPDataModule(root=str(tmp_path), frames=3, eval_batch_size=100, num_workers=0)
    with pytest.warns(UserWarning, match="metrics cover the present test sequences only"):
        dm.setup("test")
    assert dm.group_names == ["TS1", "TS3", "TS6"]
    batch = next(iter(dm.test_dataloader()))
    names = [dm.group_names[a] for a in batch["action"].tolist()]
    assert (names.count("TS1"), names.count("TS3"), names.count("TS6")) == (5, 4, 3)
    with pytest.raises(UserError, match="training needs data_train_3dhp.npz"):
        dm.setup("fit")


def test_3dhp_training_subjects_only(tmp_path, capsys) -> None:
    write_3dhp(tmp_path, {"S1 Seq1": 6, "S4 Seq2": 5}, None)
    prepare_3dhp(tmp_path)
    assert "train subjects S1 S4 (absent: S2 S3 S5 S6 S7 S8)" in capsys.readouterr().out
    dm = MPIINF3DHPDataModule(root=str(tmp_path), frames=3, batch_size=4, num_workers=0)
    with pytest.warns(UserWarning):
        dm.setup("fit")
    assert dm.train_group_names == ["S1 Seq1", "S4 Seq2"] and dm.val_dataloader() == []
    with pytest.raises(UserError, match="evaluation needs data_test_3dhp.npz"):
        dm.setup("test")
