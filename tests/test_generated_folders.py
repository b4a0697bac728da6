"""Synthetic generators write only into folders they own; nothing a user put there is unpickled."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pathlib
import shutil
from pathlib import Path

import numpy as np
import pytest

import datamodules.synthetic_h36m as syn_h36m
from datamodules.coco import CocoKeypointsDataModule
from datamodules.generated_folder import MARKER, ForeignFolderError, read_marker
from datamodules.h36m import H36MDataModule, cache_folder
from datamodules.sequence_cache import Sequence, load_pickled_npz, write_cache
from datamodules.synthetic_coco import generate_synthetic_coco
from datamodules.synthetic_h36m import generate_synthetic_h36m

REPO = Path(__file__).resolve().parents[1]
SMALL_3D = dict(frames=12, subjects=("S1", "S9"), actions=("Walking",), subactions=1)


class Payload:
    """Unpickling this object creates ``path``: proof that a file's code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _payload_npz(path: Path, key: str, sentinel: Path) -> None:
    np.savez(path, **{key: np.array(Payload(sentinel), dtype=object)})


def test_3d_synthetic_refuses_a_folder_with_real_files(tmp_path):
    """The rendered set before its keypoints exist: its data_3d_h36m.npz is not overwritten."""
    root = tmp_path / "h36m_render"
    root.mkdir()
    (root / "data_3d_h36m.npz").write_bytes(b"user's mocap")
    before = _digest(root / "data_3d_h36m.npz")
    dm = H36MDataModule(root=str(root), synthetic=True)
    with pytest.raises(ForeignFolderError) as err:
        dm.check_files("fit")
    msg = str(err.value)
    assert "\n" not in msg and str(root / "data_3d_h36m.npz") in msg
    assert "--data.init_args.root=" in msg and "--data.init_args.synthetic=false" in msg
    with pytest.raises(ForeignFolderError):
        dm.prepare_data()
    assert _digest(root / "data_3d_h36m.npz") == before
    assert sorted(p.name for p in root.iterdir()) == ["data_3d_h36m.npz"]


def test_3d_synthetic_with_another_source_names_the_missing_file(tmp_path):
    root = tmp_path / "h36m_render"
    root.mkdir()
    (root / "data_3d_h36m.npz").write_bytes(b"user's mocap")
    dm = H36MDataModule(root=str(root), synthetic=True, keypoints="ours")
    with pytest.raises(FileNotFoundError) as err:
        dm.check_files("fit")
    msg = str(err.value)
    assert "\n" not in msg and "data_2d_h36m_ours.npz" in msg and "export-2d-keypoints" in msg
    dm.prepare_data()
    assert sorted(p.name for p in root.iterdir()) == ["data_3d_h36m.npz"]


def test_pickled_payload_never_runs_with_the_synthetic_config(tmp_path, monkeypatch):
    sentinel = tmp_path / "payload-ran"
    root = tmp_path / "data"
    root.mkdir()
    _payload_npz(root / "data_3d_h36m.npz", "positions_3d", sentinel)
    _payload_npz(root / "data_2d_h36m_synthetic_det.npz", "positions_2d", sentinel)
    dm = H36MDataModule(root=str(root), synthetic=True)
    for step in (lambda: dm.check_files("fit"), dm.prepare_data):
        with pytest.raises(ForeignFolderError, match="data_3d_h36m.npz"):
            step()
    assert not sentinel.exists()
    # our own folder whose npz was swapped and whose caches are gone: regenerated from memory
    own = generate_synthetic_h36m(tmp_path / "own", **SMALL_3D)
    _payload_npz(own / "data_3d_h36m.npz", "positions_3d", sentinel)
    for source in ("gt", "synthetic_det"):
        shutil.rmtree(cache_folder(own, source))
    real = syn_h36m.generate_synthetic_h36m
    monkeypatch.setattr(  # the small set, to keep the test fast
        syn_h36m, "generate_synthetic_h36m", lambda out, seed, frames: real(out, seed, **SMALL_3D)
    )
    H36MDataModule(root=str(own), synthetic=True).prepare_data()
    assert not sentinel.exists()
    assert (cache_folder(own, "synthetic_det") / "index.json").is_file()
    # the payload is live: the explicit prepare reader would run it
    load_pickled_npz(root / "data_3d_h36m.npz", "positions_3d")
    assert sentinel.exists()


def test_only_the_prepare_commands_unpickle():
    """``allow_pickle=True`` in one reader; that reader called only by the prepare steps (and
    the explicit render command, which reads the generator's 3D file)."""
    callers, pickles = set(), []
    for path in sorted(REPO.glob("*/*.py")):
        if path.parts[-2] in ("tests", ".venv") or path.parts[-2].startswith("."):
            continue
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.keyword) and node.arg == "allow_pickle":
                    if not (isinstance(node.value, ast.Constant) and node.value.value is False):
                        pickles.append(f"{path.parent.name}/{path.name}:{fn.name}")
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", "") == "load_pickled_npz"
                ):
                    callers.add(f"{path.parent.name}/{path.name}:{fn.name}")
    assert pickles == ["datamodules/sequence_cache.py:load_pickled_npz"]
    assert callers == {
        "datamodules/h36m.py:prepare_h36m",
        "datamodules/mpi_inf_3dhp.py:prepare_3dhp",
        "datamodules/render_h36m.py:render_h36m",
    }


def test_3d_generator_marks_its_folder_and_regenerates_only_when_asked_otherwise(tmp_path):
    out = generate_synthetic_h36m(tmp_path / "syn", seed=1, **SMALL_3D)
    marker = read_marker(out)
    assert marker["generator"] == "datamodules.synthetic_h36m" and marker["complete"] is True
    assert marker["params"]["seed"] == 1
    assert (cache_folder(out, "gt") / "index.json").is_file()
    # its own folder may be regenerated (other seed) ...
    generate_synthetic_h36m(out, seed=2, **SMALL_3D)
    assert read_marker(out)["params"]["seed"] == 2
    # ... a folder with one foreign file may not
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "notes.txt").write_text("mine")
    with pytest.raises(ForeignFolderError, match="notes.txt"):
        generate_synthetic_h36m(tmp_path / "user", **SMALL_3D)
    assert [p.name for p in (tmp_path / "user").iterdir()] == ["notes.txt"]


def test_2d_synthetic_refuses_a_coco_root_with_only_a_train_json(tmp_path):
    root = tmp_path / "coco"
    train = root / "annotations" / "person_keypoints_train2017.json"
    train.parent.mkdir(parents=True)
    train.write_text(json.dumps({"images": [], "annotations": []}))
    before = _digest(train)
    dm = CocoKeypointsDataModule(root=str(root), synthetic=True)
    with pytest.raises(ForeignFolderError) as err:
        dm.check_files("fit")
    msg = str(err.value)
    assert "\n" not in msg and str(train) in msg
    assert "--data.root=" in msg and "--data.synthetic=false" in msg
    with pytest.raises(ForeignFolderError):
        dm.prepare_data()
    assert _digest(train) == before and not (root / "val2017").exists()


def test_2d_generator_is_current_after_one_run(tmp_path):
    root = tmp_path / "syn"
    dm = CocoKeypointsDataModule(
        root=str(root), synthetic=True, synthetic_num_train=2, synthetic_num_val=1
    )
    assert dm._must_generate()
    dm.prepare_data()
    assert read_marker(root)["params"] == {"num_train": 2, "num_val": 1, "seed": 0}
    assert not dm._must_generate()  # same parameters: nothing is written again
    other = CocoKeypointsDataModule(
        root=str(root), synthetic=True, synthetic_num_train=3, synthetic_num_val=1
    )
    assert other._must_generate()  # its own folder, other parameters: regenerated


def test_failed_cache_write_leaves_nothing(tmp_path):
    def sequences():
        yield Sequence(np.zeros((3, 17, 2)), np.zeros((3, 17, 3)), {"subject": "S1"})
        raise ValueError("bad entry")

    with pytest.raises(ValueError, match="bad entry"):
        write_cache(tmp_path / "cache" / "src", sequences, [3, 3], {}, 17)
    assert list(tmp_path.iterdir()) == []


def test_marker_is_written_last(tmp_path, monkeypatch):
    """A generation that dies half-way leaves an incomplete (but owned) folder: redone next time."""
    import datamodules.synthetic_coco as syn

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(syn, "synthetic_detections", boom)
    with pytest.raises(OSError, match="disk full"):
        generate_synthetic_coco(tmp_path / "syn", 1, 1)
    marker = json.loads((tmp_path / "syn" / MARKER).read_text())
    assert marker["complete"] is False
    dm = CocoKeypointsDataModule(
        root=str(tmp_path / "syn"), synthetic=True, synthetic_num_train=1, synthetic_num_val=1
    )
    assert dm._must_generate()


@pytest.mark.parametrize("package", ["pose2d", "pose3d"])
def test_cli_one_line_exit_2_and_no_run_folder(package, tmp_path, monkeypatch, capsys):
    import importlib

    monkeypatch.delenv("POSE_TRACEBACK", raising=False)
    root = tmp_path / "data"
    if package == "pose2d":
        foreign = root / "annotations" / "person_keypoints_train2017.json"
        flag = "--data.root"
    else:
        foreign = root / "data_3d_h36m.npz"
        flag = "--data.init_args.root"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("{}")
    cli = importlib.import_module(f"{package}.__main__").cli
    rc = cli(["fit", "--config", f"configs/{package}/synthetic.yaml", f"{flag}={root}",
              "--trainer.accelerator=cpu", f"--run.dir={tmp_path / 'run'}"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith(f"error: {foreign} exists")
    assert not (tmp_path / "run").exists() and foreign.read_text() == "{}"


def test_cli_user_error_is_the_only_stderr_line(tmp_path):
    """In a real process (Lightning's own log lines included), the refusal is all stderr holds."""
    import subprocess
    import sys

    root = tmp_path / "data"
    root.mkdir()
    (root / "data_3d_h36m.npz").write_text("{}")
    env = {k: v for k, v in os.environ.items() if k != "POSE_TRACEBACK"}
    proc = subprocess.run(
        [sys.executable, "-m", "pose3d", "fit", "--config", "configs/pose3d/synthetic.yaml",
         f"--data.init_args.root={root}", f"--run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [proc.stderr.strip()], proc.stderr
    assert proc.stderr.startswith(f"error: {root / 'data_3d_h36m.npz'} exists")
