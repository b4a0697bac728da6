"""Human3.6M in the public VideoPose3D file format: file names and writers.

The prepare step (``datamodules.h36m``) reads these; the synthetic generator, the renderer and
our keypoint export (``pose2d.export_keypoints``) write them::

    data_3d_h36m.npz            positions_3d: subject → action → (F, 32, 3) world metres
    data_2d_h36m_<source>.npz   positions_2d: subject → action → 4 × (F', 17, 2) pixels,
                                [confidences: same nesting, (F', 17)], metadata

The nested dicts are pickled inside the npz: that is the public format.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from datamodules.skeleton import H36M

FILE_3D = "data_3d_h36m.npz"


def file_2d(source: str) -> str:
    return f"data_2d_h36m_{source}.npz"


def save_npz_atomic(path: Path, **arrays) -> Path:
    """``np.savez_compressed`` into ``<name>.tmp`` next to ``path``, fsync, then ``os.replace``:
    a reader (or a kill) never sees half a file, and a failed write keeps the previous one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_3d_h36m(folder: str | Path, positions_3d: dict) -> Path:
    """``folder/data_3d_h36m.npz`` with ``positions_3d`` (subject → action → ``(F, 32, 3)``)."""
    return save_npz_atomic(Path(folder) / FILE_3D, positions_3d=positions_3d)


def write_2d_h36m(
    folder: str | Path,
    source: str,
    positions_2d: dict,
    confidences: dict | None = None,
    layout_name: str | None = "h36m",
) -> Path:
    """``folder/data_2d_h36m_<source>.npz``: H36M-17 pixels (subject → action → 4 cameras),
    optional per-joint scores, and the metadata (``layout_name`` is omitted when ``None``, as in
    the published ground-truth file; the detection files carry it)."""
    metadata = {"layout_name": layout_name} if layout_name else {}
    metadata.update(
        num_joints=H36M.num_joints, keypoints_symmetry=[list(H36M.left), list(H36M.right)]
    )
    arrays = {"positions_2d": positions_2d}
    if confidences is not None:
        arrays["confidences"] = confidences
    return save_npz_atomic(Path(folder) / file_2d(source), **arrays, metadata=metadata)
