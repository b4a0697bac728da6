"""The H36M prepare step refuses files it would mis-score: wrong 2D layout, NaN/Inf, nothing to
prepare; each is one line (exit status 2) naming the file, the entry and the fix."""

from __future__ import annotations

import numpy as np
import pytest

from callbacks.user_error import BadInputError
from datamodules.h36m import main, prepare_h36m
from datamodules.sequence_cache import read_cache
from datamodules.skeleton import COCO, H36M, coco_to_h36m

SEQS = [("S1", "Walking", 6), ("S9", "Eating 2", 5)]
H36M_SYM = [list(H36M.left), list(H36M.right)]
COCO_SYM = [list(COCO.left), list(COCO.right)]


def write_files(root, metadata, nan_at=None, nan_3d=False):
    """VideoPose3D-format files; ``nan_at`` = (subject, action, camera, frame) gets a NaN."""
    rng = np.random.default_rng(0)
    p3d, p2d = {}, {}
    for subject, action, n in SEQS:
        p3d.setdefault(subject, {})[action] = rng.normal(0, 0.3, (n, 32, 3)).astype(np.float32)
        p2d.setdefault(subject, {})[action] = [
            rng.uniform(0, 1000, (n, 17, 2)).astype(np.float32) for _ in range(4)
        ]
    if nan_at:
        s, a, c, f = nan_at
        if nan_3d:
            p3d[s][a][f, 3, 1] = np.inf
        else:
            p2d[s][a][c][f, 5, 0] = np.nan
    root.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(root / "data_3d_h36m.npz", positions_3d=p3d)
    np.savez_compressed(root / "data_2d_h36m_det.npz", positions_2d=p2d, metadata=metadata)
    return p2d


def _cli(capsys, argv) -> tuple[int, str]:
    from callbacks.user_error import exit_code

    rc = exit_code(main, ["prepare", *argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    return rc, err.strip()


def test_coco_symmetry_declared_as_h36m_is_refused(tmp_path, capsys):
    write_files(tmp_path, {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": COCO_SYM})
    rc, err = _cli(capsys, ["--root", str(tmp_path), "--keypoints", "det"])
    p2d = tmp_path / "data_2d_h36m_det.npz"
    assert rc == 2
    assert err == (
        f"error: {p2d}: metadata keypoints_symmetry {COCO_SYM} is the coco layout's but the "
        "file declares layout_name 'h36m'; fix layout_name in the file's metadata or prepare "
        "with --layout coco"
    )
    assert not (tmp_path / "cache").exists()


def test_coco_symmetry_without_layout_name_is_refused(tmp_path):
    write_files(tmp_path, {"num_joints": 17, "keypoints_symmetry": COCO_SYM})
    with pytest.raises(BadInputError, match=r"no layout_name \(h36m\); .*--layout coco"):
        prepare_h36m(tmp_path, "det")


def test_layout_override_converts_coco_order(tmp_path):
    p2d = write_files(tmp_path, {"keypoints_symmetry": COCO_SYM})
    cache = read_cache(prepare_h36m(tmp_path, "det", layout="coco"))
    assert cache.meta["layout_2d"] == "coco"
    first = cache.sequences[0]
    assert (first["subject"], first["action"]) == ("S1", "Walking")
    # S1 camera 0 is 1000 px wide: x / 1000 * 2 - 1; the hip centre is the COCO hips' mean.
    pelvis = coco_to_h36m(p2d["S1"]["Walking"][0].astype(np.float64))[:, 0]
    np.testing.assert_allclose(cache.pos2d[:6, 0, 0], pelvis[:, 0] / 1000 * 2 - 1, atol=1e-6)


def test_matching_symmetry_and_unknown_layout(tmp_path, capsys):
    write_files(tmp_path, {"layout_name": "coco", "keypoints_symmetry": COCO_SYM})
    assert read_cache(prepare_h36m(tmp_path, "det")).num_sequences == 8
    write_files(tmp_path, {"layout_name": "openpose", "keypoints_symmetry": COCO_SYM})
    rc, err = _cli(capsys, ["--root", str(tmp_path), "--keypoints", "det"])
    assert rc == 2 and "unknown metadata layout_name 'openpose'; known: h36m, coco" in err


def test_nan_in_2d_is_refused_naming_the_entry(tmp_path, capsys):
    write_files(tmp_path, {"keypoints_symmetry": H36M_SYM}, nan_at=("S9", "Eating 2", 2, 3))
    rc, err = _cli(capsys, ["--root", str(tmp_path), "--keypoints", "det"])
    assert rc == 2
    assert err == (
        f"error: {tmp_path / 'data_2d_h36m_det.npz'}: S9 / 'Eating 2' camera 2: 1 frames with "
        "NaN/Inf 2D values (first: frame 3); fix the file, or prepare with --nonfinite drop to "
        "leave those sequences out"
    )
    assert not (tmp_path / "cache").exists()


def test_inf_in_3d_can_be_dropped_with_a_count(tmp_path, capsys):
    write_files(tmp_path, {}, nan_at=("S1", "Walking", 0, 4), nan_3d=True)
    expect = r"data_3d_h36m\.npz: S1 / 'Walking' camera 0: 1 frames with NaN/Inf 3D values"
    with pytest.raises(BadInputError, match=expect + r" \(first: frame 4\) \(and 3 more"):
        prepare_h36m(tmp_path, "det")
    cache = read_cache(prepare_h36m(tmp_path, "det", nonfinite="drop"))
    assert "dropped 4 sequences with NaN/Inf values" in capsys.readouterr().out
    assert [r["subject"] for r in cache.sequences] == ["S9"] * 4
    assert np.isfinite(cache.pos3d).all() and np.isfinite(cache.pos2d).all()


def test_nothing_to_prepare_is_refused(tmp_path, capsys):
    write_files(tmp_path, {})
    with pytest.raises(BadInputError, match="no sequence to prepare"):  # every pair skipped
        prepare_h36m(tmp_path, "det", skip=[(s, a) for s, a, _ in SEQS])
    np.savez_compressed(tmp_path / "data_3d_h36m.npz", positions_3d={})  # an empty 3D file
    rc, err = _cli(capsys, ["--root", str(tmp_path), "--keypoints", "det"])
    assert rc == 2 and "no sequence to prepare (3D subjects: none;" in err
    assert not (tmp_path / "cache").exists()


def test_wrong_joint_count_stays_a_clear_error(tmp_path, capsys):
    rng = np.random.default_rng(1)
    np.savez_compressed(
        tmp_path / "data_3d_h36m.npz", positions_3d={"S1": {"Walking": rng.normal(size=(4, 32, 3))}}
    )
    p2d = {"S1": {"Walking": [rng.normal(size=(4, 16, 2))] * 4}}
    np.savez_compressed(tmp_path / "data_2d_h36m_det.npz", metadata={}, positions_2d=p2d)
    rc, err = _cli(capsys, ["--root", str(tmp_path), "--keypoints", "det"])
    assert rc == 2 and "2D keypoints have 16 joints (layout 'h36m')" in err


def test_batch_larger_than_the_split_says_so_and_samples_are_named(tmp_path):
    import torch

    from datamodules.h36m import H36MDataModule

    write_files(tmp_path, {"keypoints_symmetry": H36M_SYM})
    prepare_h36m(tmp_path, "det")
    dm = H36MDataModule(root=str(tmp_path), keypoints="det", frames=3, batch_size=4096,
                        num_workers=0, train_subjects=("S1",), test_subjects=("S9",))  # fmt: skip
    dm.setup("fit")
    n = len(dm.train_set)
    with pytest.warns(UserWarning, match=f"batch_size 4096 is larger than the {n} training "
                      f"windows of {dm.cache_folder}: every epoch is one step"):  # fmt: skip
        batch = next(iter(dm.train_dataloader()))
    i = int(torch.nonzero(batch["frame"] == 4)[0, 0])
    desc = dm.describe_sample(batch, i)
    assert desc.startswith(f"{dm.cache_folder}: S1 / Walking / ") and desc.endswith(", frame 4")


def test_3dhp_prepare_refuses_nan_but_ignores_unscored_3d(tmp_path, capsys):
    from callbacks.user_error import exit_code
    from datamodules.mpi_inf_3dhp import main as main_3dhp
    from datamodules.mpi_inf_3dhp import prepare_3dhp

    rng = np.random.default_rng(0)

    def seq(n):
        return {"data_2d": rng.uniform(0, 2048, (n, 17, 2)),
                "data_3d": rng.normal(0, 400.0, (n, 17, 3))}  # fmt: skip

    train = {"S1 Seq1": [{0: seq(6), 1: seq(6)}, 50]}
    test = {"TS1": dict(seq(5), valid=np.array([1.0, 1, 0, 1, 1]))}
    test["TS1"]["data_3d"][2] = np.nan  # an invalid (never scored) frame: fine
    np.savez_compressed(tmp_path / "data_test_3dhp.npz", data=test)
    train["S1 Seq1"][0][1]["data_2d"][3, 0, 0] = np.inf
    np.savez_compressed(tmp_path / "data_train_3dhp.npz", data=train)
    rc = exit_code(main_3dhp, ["prepare", "--root", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err == (
        f"error: {tmp_path / 'data_train_3dhp.npz'}: S1 Seq1 camera 1: 1 frames with NaN/Inf 2D "
        "values (first: frame 3); fix the file, or prepare with --nonfinite drop to leave those "
        "sequences out\n"
    )
    cache = read_cache(prepare_3dhp(tmp_path, nonfinite="drop"))
    assert [(r["name"], r["camera"]) for r in cache.sequences] == [("S1 Seq1", "0"), ("TS1", "0")]
    assert "dropped 1 sequences with NaN/Inf values" in capsys.readouterr().out
