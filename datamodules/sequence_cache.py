"""The pickle-free, memory-mappable cache that every 3D DataModule trains from.

The public Human3.6M / MPI-INF-3DHP npz files hold pickled dicts (``allow_pickle=True``). They are
read once by an explicit ``prepare`` step and rewritten here as plain arrays:

```
<folder>/pos2d.npy    float32 (N, J, 2)  normalised screen coordinates, all sequences concatenated
<folder>/pos3d.npy    float32 (N, J, 3)  camera space, root-relative metres, root joint zeroed
<folder>/conf.npy     float32 (N, J)     optional 2D confidences
<folder>/valid.npy    bool    (N,)       optional per-frame validity (3DHP test)
<folder>/offsets.npy  int64   (S,)       first row of each sequence
<folder>/lengths.npy  int64   (S,)       frames per sequence
<folder>/index.json   dataset, source, skeleton and one record per sequence (names, camera, size)
```

``index.json`` is written last, so a folder without it is an interrupted prepare, not a cache.
Training opens the arrays with ``np.load(mmap_mode="r")``: nothing is unpickled, nothing copied.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from callbacks.user_error import BadInputError

CACHE_VERSION = 1
INDEX_FILE = "index.json"


@dataclass
class SequenceCache:
    """Arrays of one cache folder (memory-mapped when read with ``mmap=True``)."""

    folder: Path
    pos2d: np.ndarray  # (N, J, 2)
    pos3d: np.ndarray  # (N, J, 3)
    offsets: np.ndarray  # (S,)
    lengths: np.ndarray  # (S,)
    meta: dict[str, Any]
    conf: np.ndarray | None = None  # (N, J)
    valid: np.ndarray | None = None  # (N,)
    sequences: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.sequences = self.meta["sequences"]

    @property
    def num_sequences(self) -> int:
        return len(self.lengths)


@dataclass
class Sequence:
    """One sequence to write: arrays plus its JSON record (subject, action, camera, ...)."""

    pos2d: np.ndarray  # (F, J, 2)
    pos3d: np.ndarray  # (F, J, 3)
    record: dict[str, Any]
    conf: np.ndarray | None = None  # (F, J)
    valid: np.ndarray | None = None  # (F,)


def cache_exists(folder: str | os.PathLike) -> bool:
    return (Path(folder) / INDEX_FILE).is_file()


def write_cache(
    folder: str | os.PathLike,
    sequences: Callable[[], Iterable[Sequence]],
    lengths: list[int],
    meta: dict[str, Any],
    num_joints: int,
    with_conf: bool = False,
    with_valid: bool = False,
) -> Path:
    """Write a cache, streaming ``sequences()`` into pre-sized ``.npy`` files (low peak memory).

    ``lengths`` must list the frames of each yielded sequence, in order. The folder is built under
    a temporary name and renamed at the end, so readers never see half a cache.
    """
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # left by a killed prepare
    new_parent = not folder.parent.exists()
    try:
        _write_arrays(tmp, sequences, lengths, meta, num_joints, with_conf, with_valid)
        old = folder.with_name(folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:  # a failed prepare leaves no half-written folder behind
        shutil.rmtree(tmp, ignore_errors=True)
        if new_parent and folder.parent.is_dir() and not any(folder.parent.iterdir()):
            folder.parent.rmdir()
    return folder


def _write_arrays(
    tmp: Path,
    sequences: Callable[[], Iterable[Sequence]],
    lengths: list[int],
    meta: dict[str, Any],
    num_joints: int,
    with_conf: bool,
    with_valid: bool,
) -> None:
    tmp.mkdir(parents=True)
    n, s = int(sum(lengths)), len(lengths)
    offsets = np.zeros(s, dtype=np.int64)
    offsets[1:] = np.cumsum(lengths)[:-1]
    open_ = np.lib.format.open_memmap
    pos2d = open_(tmp / "pos2d.npy", mode="w+", dtype=np.float32, shape=(n, num_joints, 2))
    pos3d = open_(tmp / "pos3d.npy", mode="w+", dtype=np.float32, shape=(n, num_joints, 3))
    conf = open_(tmp / "conf.npy", "w+", np.float32, (n, num_joints)) if with_conf else None
    valid = open_(tmp / "valid.npy", "w+", np.bool_, (n,)) if with_valid else None
    records = []
    count = 0
    for i, seq in enumerate(sequences()):
        if i >= s or len(seq.pos2d) != lengths[i] or len(seq.pos3d) != lengths[i]:
            raise RuntimeError(f"sequence {i} ({seq.record}) does not match the announced lengths")
        rows = slice(offsets[i], offsets[i] + lengths[i])
        pos2d[rows] = seq.pos2d
        pos3d[rows] = seq.pos3d
        if conf is not None:
            conf[rows] = 1.0 if seq.conf is None else seq.conf
        if valid is not None:
            valid[rows] = True if seq.valid is None else seq.valid
        records.append(dict(seq.record, length=int(lengths[i])))
        count += 1
    if count != s:
        raise RuntimeError(f"expected {s} sequences, got {count}")
    for arr in (pos2d, pos3d, conf, valid):
        if arr is not None:
            arr.flush()
    del pos2d, pos3d, conf, valid
    np.save(tmp / "offsets.npy", offsets)
    np.save(tmp / "lengths.npy", np.asarray(lengths, dtype=np.int64))
    index = dict(
        meta, version=CACHE_VERSION, num_frames=n, num_joints=num_joints, sequences=records
    )
    (tmp / INDEX_FILE).write_text(json.dumps(index, indent=1))


def read_cache(folder: str | os.PathLike, mmap: bool = True) -> SequenceCache:
    """Open a cache written by :func:`write_cache` (no pickle: ``allow_pickle=False``)."""
    folder = Path(folder)
    if not cache_exists(folder):
        raise FileNotFoundError(f"no prepared cache in {folder} (missing {INDEX_FILE})")
    mode = "r" if mmap else None

    def load(name: str, required: bool = True) -> np.ndarray | None:
        path = folder / name
        if not path.is_file():
            if required:
                raise FileNotFoundError(
                    f"corrupt cache {folder}: {name} is missing; re-run prepare"
                )
            return None
        try:
            return np.load(path, mmap_mode=mode, allow_pickle=False)
        except ValueError as err:
            raise ValueError(f"corrupt cache file {path}: {err}; re-run prepare") from err

    try:
        meta = json.loads((folder / INDEX_FILE).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"corrupt cache index {folder / INDEX_FILE}: {err}") from err
    if meta.get("version") != CACHE_VERSION:
        raise ValueError(
            f"cache {folder} has version {meta.get('version')}, expected "
            f"{CACHE_VERSION}; re-run prepare"
        )
    cache = SequenceCache(
        folder=folder,
        pos2d=load("pos2d.npy"),
        pos3d=load("pos3d.npy"),
        offsets=np.asarray(load("offsets.npy")),
        lengths=np.asarray(load("lengths.npy")),
        meta=meta,
        conf=load("conf.npy", required=False),
        valid=load("valid.npy", required=False),
    )
    n = int(cache.lengths.sum())
    if cache.pos2d.shape[0] != n or cache.pos3d.shape[0] != n:
        raise ValueError(
            f"corrupt cache {folder}: arrays hold {cache.pos2d.shape[0]} rows, "
            f"the index {n}; re-run prepare"
        )
    return cache


def drop_nonfinite(items: list, bad: list[tuple[int, str]], nonfinite: str) -> list:
    """The prepare commands' NaN/Inf policy: ``bad`` holds ``(index into items, message)``.

    ``nonfinite="error"`` refuses with the first message (one line); ``"drop"`` returns ``items``
    without the bad ones and prints how many went.
    """
    if not bad:
        return items
    if nonfinite == "error":
        more = f" (and {len(bad) - 1} more sequences)" if len(bad) > 1 else ""
        raise BadInputError(
            f"{bad[0][1]}{more}; fix the file, or prepare with --nonfinite drop to leave those "
            "sequences out"
        )
    dropped = {i for i, _ in bad}
    print(f"prepare: dropped {len(dropped)} sequences with NaN/Inf values, e.g. {bad[0][1]}")
    return [it for i, it in enumerate(items) if i not in dropped]


def load_pickled_npz(path: Path, key: str, required: bool = True) -> dict | None:
    """Value of ``key`` in a public npz holding a pickled dict: the ONLY ``allow_pickle=True``.

    Called by the explicit ``prepare`` steps, never by training.
    """
    if not path.is_file():
        raise FileNotFoundError(f"missing {path}")
    try:
        with np.load(path, allow_pickle=True) as f:
            if key not in f.files:
                if required:
                    raise KeyError(f"{path} has no key {key!r} (keys: {f.files})")
                return None
            return f[key].item()
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"cannot read {path} (corrupt or not a VideoPose3D npz): {err}") from err


def root_relative(pos3d: np.ndarray, root: int) -> np.ndarray:
    """``(..., J, 3)`` → positions relative to joint ``root``, whose slot becomes exactly 0."""
    return pos3d - pos3d[..., root : root + 1, :]
