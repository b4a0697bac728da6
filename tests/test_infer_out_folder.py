"""pose3d.infer into a used --out: our previous run's files go (no stale frames), a user's stay."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from pose3d.infer import cli, main
from pose3d.output_folder import MARKER
from tests.tiny_checkpoints import write_tiny_checkpoints


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    return write_tiny_checkpoints(tmp_path_factory.mktemp("ckpt"))


def _images(folder, n):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.png"), rng.integers(0, 255, (48, 64, 3), np.uint8))
    return folder


def _args(ckpts, images, out):
    return ["--input", str(images), "--detector", str(ckpts[0]), "--lifter", str(ckpts[1]),
            "--out", str(out), "--min-score", "0"]  # fmt: skip


def test_a_second_run_leaves_no_stale_frames_and_keeps_user_files(ckpts, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    main(_args(ckpts, _images(tmp_path / "long", 4), out))
    assert len(list((out / "frames").glob("*.png"))) == 4
    main(_args(ckpts, _images(tmp_path / "short", 2), out))
    frames = sorted(p.name for p in (out / "frames").iterdir())
    assert frames == ["000000.png", "000001.png"]
    assert json.loads((out / "results.json").read_text())["num_frames"] == 2
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(json.loads((out / MARKER).read_text())["files"]) == sorted(
        ["results.npz", "results.json", *(f"frames/{f}" for f in frames)]
    )


def test_foreign_results_in_out_are_one_line(ckpts, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("POSE_TRACEBACK", raising=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("{}")
    rc = cli(_args(ckpts, _images(tmp_path / "imgs", 2), out))
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "choose an empty or new --out" in err
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]
    assert (out / "results.json").read_text() == "{}"
