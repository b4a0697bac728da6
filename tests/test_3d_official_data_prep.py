"""The training arrays equal what the official PoseFormer/VideoPose3D preparation makes of the
same npz files.

The official script keeps 17 of the 32 mocap joints, turns world metres into each camera's
frame (inverse camera quaternion, translation in metres), subtracts the root from the other
joints, cuts each 2D sequence to the mocap length and maps pixels to ``x / w * 2 - [1, h / w]``
with that camera's resolution; the root itself is zeroed before the loss. This test restates
those steps from their definition on the raw files and compares them with our cache, so
together with ``tests/test_3d_official_training.py`` (cache → the official generator's
windows and flips) the batches are pinned from the files on disk to the loss.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datamodules.cameras import h36m_camera
from datamodules.h36m import prepare_h36m
from datamodules.sequence_cache import read_cache
from datamodules.synthetic_h36m import generate_synthetic_h36m

# The joints VideoPose3D's Human36mDataset removes from the 32-joint mocap (static ones).
OFFICIAL_REMOVED = [4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29, 30, 31]


def _qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate ``v (..., 3)`` by the unit quaternion ``q = (w, x, y, z)``."""
    u = np.broadcast_to(q[1:], v.shape)
    uv = np.cross(u, v)
    return v + 2 * (q[0] * uv + np.cross(u, uv))


def _official_arrays(root: Path, source: str) -> dict:
    """{(subject, action, camera id): (2D (F, 17, 2), 3D (F, 17, 3) with the root zeroed)}."""
    with np.load(root / "data_3d_h36m.npz", allow_pickle=True) as f:
        mocap = f["positions_3d"].item()
    with np.load(root / f"data_2d_h36m_{source}.npz", allow_pickle=True) as f:
        keypoints = f["positions_2d"].item()
    kept = [j for j in range(32) if j not in OFFICIAL_REMOVED]
    out = {}
    for subject, actions in mocap.items():
        for action, world in actions.items():
            world = np.asarray(world, np.float64)[:, kept]
            for c, kp in enumerate(keypoints[subject][action]):
                cam = h36m_camera(subject, c)
                conj = cam.orientation * np.array([1.0, -1.0, -1.0, -1.0])
                p3 = _qrot(conj, world - cam.translation)
                p3[:, 1:] -= p3[:, :1]
                p3[:, 0] = 0.0  # run_poseformer.py: inputs_3d[:, :, 0] = 0
                k = np.asarray(kp, np.float64)[: len(world)]
                k = k / cam.res_w * 2 - np.array([1.0, cam.res_h / cam.res_w])
                out[(subject, action, cam.id)] = (k, p3)
    return out


@pytest.fixture(scope="module")
def raw_h36m(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("h36m")
    generate_synthetic_h36m(root, seed=3, frames=14, subjects=("S1", "S9"),
                            actions=("Walking", "Eating"), subactions=1)  # fmt: skip
    return root


def _assert_cache_matches(root: Path, cache_dir: Path, source: str) -> None:
    expected = _official_arrays(root, source)
    cache = read_cache(cache_dir)
    got = {}
    for i, rec in enumerate(cache.sequences):
        sl = slice(cache.offsets[i], cache.offsets[i] + cache.lengths[i])
        got[(rec["subject"], rec["action"], rec["camera"])] = (cache.pos2d[sl], cache.pos3d[sl])
    assert got.keys() == expected.keys()
    for key, (k, p3) in expected.items():
        assert got[key][0].shape == k.shape and got[key][1].shape == p3.shape, key
        # float32 storage: 2D to 1e-6 (normalised units), 3D to 1 µm
        np.testing.assert_allclose(got[key][0], k, rtol=0, atol=1e-6, err_msg=str(key))
        np.testing.assert_allclose(got[key][1], p3, rtol=0, atol=1e-6, err_msg=str(key))


@pytest.mark.parametrize("source", ["gt", "synthetic_det"])
def test_generated_cache_is_the_official_preparation_of_its_npz_files(
    raw_h36m: Path, source: str
) -> None:
    # the detection file holds more frames than the mocap (as the real ones): the official cut
    with np.load(raw_h36m / f"data_2d_h36m_{source}.npz", allow_pickle=True) as f:
        kp = f["positions_2d"].item()["S1"]
    with np.load(raw_h36m / "data_3d_h36m.npz", allow_pickle=True) as f:
        mocap = f["positions_3d"].item()["S1"]
    longer = [len(kp[a][c]) - len(mocap[a]) for a in mocap for c in range(4)]
    assert min(longer) >= 0 and (source == "gt" or min(longer) > 0)
    _assert_cache_matches(raw_h36m, raw_h36m / "cache" / source, source)


def test_prepared_cache_is_the_official_preparation_of_its_npz_files(
    raw_h36m: Path, tmp_path: Path
) -> None:
    """``python -m datamodules.h36m prepare`` (what a user with the real files runs)."""
    root = tmp_path / "user"
    root.mkdir()
    for name in ("data_3d_h36m.npz", "data_2d_h36m_synthetic_det.npz"):
        (root / name).write_bytes((raw_h36m / name).read_bytes())
    folder = prepare_h36m(root, "synthetic_det")
    _assert_cache_matches(root, Path(folder), "synthetic_det")
