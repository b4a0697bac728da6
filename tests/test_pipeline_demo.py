"""``make demo`` end to end (slow: trains two small models through their CLIs)."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_demo_end_to_end(tmp_path, monkeypatch):
    from pose3d.demo import main

    monkeypatch.setenv("WANDB_MODE", "disabled")
    out = main(["--out", str(tmp_path / "demo"), "--epochs-2d", "1", "--epochs-3d", "1",
                "--frames", "30", "--batches-3d", "20", "--people-frames", "12"])  # fmt: skip
    with np.load(out / "results.npz") as z:
        assert z["keypoints_2d"].shape == (30, 17, 3) and z["pose_3d"].shape == (30, 17, 3)
        assert np.isfinite(z["pose_3d"]).all()
    doc = json.loads((out / "results.json").read_text())
    assert doc["num_frames"] == 30 and doc["timings"]["fps_end_to_end"] > 0
    assert len(list((out / "frames").glob("*.png"))) == 3 and (out / "result.mp4").is_file()
    with np.load(out.parent / "result_people" / "results.npz") as z:  # the two-person clip
        assert z["track_ids"].tolist() == [0, 1]
        assert z["track_frames"].tolist() == [[0, 12], [4, 12]]  # B enters at frame 12 // 3
    # A second run reuses the checkpoints instead of training again.
    again = main(["--out", str(tmp_path / "demo"), "--frames", "30", "--people-frames", "0"])
    assert again == out
