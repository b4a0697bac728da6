"""Temporal windows over concatenated sequences, gathered a whole batch at a time.

A sample is a pair (sequence, centre frame). Its window is ``frames`` (odd) consecutive frames
centred on it; frames past either end of the sequence repeat the first / last frame (edge
padding, as VideoPose3D's ``np.pad(..., "edge")``). A batch is gathered by
:func:`gather_windows`: windows clear of both sequence ends are one contiguous (or, with
``downsample``, strided) slice copy each into one preallocated batch array, and only the windows
that need edge padding go through the rows of :func:`window_rows` (one ``np.clip`` and one fancy
index for all of them). The slice copies run at memory speed; the fancy index over (B, T) rows is
about twice as slow (docs/speed.md).

``downsample = d`` views each 50 fps sequence as frames ``0, d, 2d, ...``: centres and window
taps both live on that grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.buffer_pool import BufferPool
from datamodules.sample_rng import sample_rng
from datamodules.sequence_cache import SequenceCache, read_cache
from datamodules.skeleton import Skeleton, flip_pose

# Where flagged windows are mirrored, and how windows are gathered (PoseWindowDataset).
FlipAt = Literal["loader", "transfer"]
Gather = Literal["slices", "rows"]


def build_samples(
    lengths: np.ndarray,
    seqs: np.ndarray | None = None,
    stride: int = 1,
    downsample: int = 1,
    valid: np.ndarray | None = None,
    offsets: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Centres of all windows: ``(seq (M,), frame (M,))`` int64, sequence by sequence.

    ``seqs`` selects sequences (default all); every ``stride``-th frame of the downsampled grid is
    a centre. With ``valid (N,)`` (and ``offsets``) only valid frames become centres.
    """
    if stride < 1 or downsample < 1:
        raise ValueError(f"stride and downsample must be >= 1, got {stride}, {downsample}")
    lengths = np.asarray(lengths, dtype=np.int64)
    seqs = np.arange(len(lengths)) if seqs is None else np.asarray(seqs, dtype=np.int64)
    grid = (lengths[seqs] - 1) // downsample + 1  # frames on the downsampled grid
    counts = (grid - 1) // stride + 1
    seq = np.repeat(seqs, counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    frame = (np.arange(len(seq)) - starts) * stride * downsample
    if valid is not None:
        assert offsets is not None, "valid needs offsets"
        keep = np.asarray(valid[np.asarray(offsets)[seq] + frame], dtype=bool)
        seq, frame = seq[keep], frame[keep]
    return seq.astype(np.int64), frame.astype(np.int64)


def _check_frames(frames: int) -> None:
    if frames < 1 or frames % 2 == 0:
        raise ValueError(f"frames must be odd (a window centred on its frame), got {frames}")


def window_rows(
    offsets: np.ndarray,
    lengths: np.ndarray,
    seq: np.ndarray,
    frame: np.ndarray,
    frames: int,
    downsample: int = 1,
) -> np.ndarray:
    """Global rows ``(B, frames)`` of the windows centred on ``frame`` in sequences ``seq``."""
    _check_frames(frames)
    pad = frames // 2
    taps = np.arange(-pad, pad + 1, dtype=np.int64) * downsample
    last = (lengths[seq] - 1) // downsample * downsample  # last frame on the grid
    f = np.clip(frame[:, None] + taps, 0, last[:, None])
    return offsets[seq][:, None] + f


def gather_windows(
    arrays: Sequence[np.ndarray],
    offsets: np.ndarray,
    lengths: np.ndarray,
    seq: np.ndarray,
    frame: np.ndarray,
    frames: int,
    downsample: int = 1,
    pool: BufferPool | None = None,
) -> list[np.ndarray]:
    """Windows ``(B, frames, *a.shape[1:])`` of every array ``a (N, ...)``: equal to
    ``a[window_rows(offsets, lengths, seq, frame, frames, downsample)]``, gathered faster.

    Interior windows (no tap clipped) are slice copies into one preallocated array per input
    (from ``pool`` when given: reused once the previous batch is released); the others, near
    either end of their sequence or in sequences shorter than the window, take the clipped rows
    of :func:`window_rows`.
    """
    _check_frames(frames)
    arrays = [np.asarray(a) for a in arrays]  # plain views: a np.memmap slice costs ~3 µs more
    half = frames // 2 * downsample
    seq, frame = np.asarray(seq, np.int64), np.asarray(frame, np.int64)
    last = (lengths[seq] - 1) // downsample * downsample  # last frame on the grid
    inner = (frame >= half) & (frame + half <= last)
    edge = np.flatnonzero(~inner)
    specs = [((len(seq), frames, *a.shape[1:]), a.dtype) for a in arrays]
    outs = (pool or BufferPool(0)).take(specs)
    if len(edge):
        rows = window_rows(offsets, lengths, seq[edge], frame[edge], frames, downsample)
        for out, a in zip(outs, arrays, strict=True):
            out[edge] = a[rows]
    span = 2 * half + 1
    starts = (offsets[seq] + frame - half)[inner].tolist()
    pairs = list(zip(outs, arrays, strict=True))
    for i, s in zip(np.flatnonzero(inner).tolist(), starts, strict=True):
        for out, a in pairs:  # Python loop: ~1 µs per copy against ~10 µs of data at T = 243
            out[i] = a[s : s + span : downsample]
    return outs


def mirror_flagged(
    x: torch.Tensor, flip: torch.Tensor, skeleton: Skeleton, masked: bool | None = None
) -> torch.Tensor:
    """``x (B, ...)`` with the rows where ``flip (B,)`` is true replaced by their
    :func:`~datamodules.skeleton.flip_pose` mirror.

    ``masked`` (default: on any non-CPU device) mirrors the whole batch and selects with
    ``torch.where``, which needs no host sync; otherwise only the flagged rows are mirrored, in
    place, one window at a time (on CPU ~4× faster than indexing the flagged rows at once).
    """
    if masked is None:
        masked = x.device.type != "cpu"
    if masked:
        return torch.where(flip.view(-1, *[1] * (x.dim() - 1)), flip_pose(x, skeleton), x)
    for i in torch.nonzero(flip).squeeze(1).tolist():
        x[i] = flip_pose(x[i], skeleton)
    return x


def apply_pending_flips(batch: dict[str, torch.Tensor], skeleton: Skeleton) -> dict:
    """Mirror the windows a :class:`PoseWindowDataset` with ``flip_at="transfer"`` left to do:
    pops ``flip_pending (B,) bool`` and stores it as ``flip`` (the batch is then exactly the one
    ``flip_at="loader"`` returns). Batches without pending flips are returned unchanged."""
    pending = batch.pop("flip_pending", None)
    if pending is None:
        return batch
    for key in ("input_2d", "target_3d"):
        batch[key] = mirror_flagged(batch[key], pending, skeleton)
    batch["flip"] = pending
    return batch


def collate_batched(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The dataset already returns whole batches (``__getitems__``); nothing to stack."""
    return batch


class PoseWindowDataset(Dataset):
    """Windows of a :class:`SequenceCache`; ``dataset[list_of_ids]`` returns one batch dict.

    Batch (docs/CONTRACTS.md): ``input_2d (B, T, J, 2)``, ``target_3d (B, T, J, 3)`` float32 and
    ``action``, ``seq``, ``frame``, ``index`` int64 ``(B,)``. Use with
    ``DataLoader(..., batch_size=B, collate_fn=collate_batched)``.

    Flip augmentation mirrors a window: x → −x for the normalised 2D and the camera-space 3D,
    left/right joints swapped (``skeleton.left``/``right``, the 2D files' ``keypoints_symmetry``).
    The lifter sees no intrinsics, so the camera needs no flipping. Two modes:

    - ``flip_double=True`` (VideoPose3D/PoseFormer ``ChunkedGenerator`` with ``augment``): the
      dataset holds every window twice, ids ``[0, M)`` as is and ``[M, 2M)`` mirrored, so a
      shuffled epoch sees each window once in each orientation (``len = 2M``).
    - ``flip_prob > 0``: each window is mirrored with that probability when it is drawn (the
      draw mixes torch's generator, seeded per DataLoader worker, with the DDP rank:
      ``datamodules/sample_rng.py``; ``len = M``).

    With flip augmentation a batch also holds ``flip (B,) bool`` (the mirrored windows). Where
    the mirror happens is ``flip_at``: "loader" mirrors in numpy here; "transfer" returns the
    windows as stored plus ``flip_pending (B,) bool`` and leaves the mirror to
    :func:`apply_pending_flips`, which the DataModules call in ``on_after_batch_transfer``, on
    the training device (mirroring half a batch in numpy costs more than gathering it). Both
    give the training step the same batch; the flip draws are the same.

    Args:
        cache_folder: the prepared :class:`SequenceCache` folder.
        seq, frame: ``(M,)`` sequence and centre frame of every window (``build_samples``).
        group: ``(S,)`` group (action / sequence) id of every cache sequence.
        frames: window length T (odd).
        skeleton: joint layout (left/right lists for the flip).
        downsample: frame step of the window taps (see ``window_rows``).
        flip_prob: probability of mirroring a drawn window (0: never); not with ``flip_double``.
        flip_double: every window twice per epoch, as is and mirrored (the official generator).
        cache: an already opened cache (else read lazily from ``cache_folder``).
        flip_at: where flagged windows are mirrored: "loader" (here) or "transfer" (by
            :func:`apply_pending_flips` after the batch reached its device).
        gather: "slices" (:func:`gather_windows`) or "rows" (one fancy index over the
            :func:`window_rows` of the whole batch, the reference; same values, slower).

    The cache is opened lazily and dropped when pickled, so worker processes memory-map the
    files themselves instead of receiving a copy of the arrays.
    """

    def __init__(
        self,
        cache_folder: str | Path,
        seq: np.ndarray,
        frame: np.ndarray,
        group: np.ndarray,
        frames: int,
        skeleton: Skeleton,
        downsample: int = 1,
        flip_prob: float = 0.0,
        cache: SequenceCache | None = None,
        flip_double: bool = False,
        flip_at: FlipAt = "loader",
        gather: Gather = "slices",
    ) -> None:
        if flip_double and flip_prob > 0:
            raise ValueError("flip_double mirrors every window once per epoch; flip_prob must be 0")
        if flip_at not in ("loader", "transfer") or gather not in ("slices", "rows"):
            raise ValueError(
                f"flip_at: loader|transfer, gather: slices|rows; got {flip_at}/{gather}"
            )
        self.flip_at, self.gather = flip_at, gather
        self.cache_folder = Path(cache_folder)
        self.seq, self.frame = np.asarray(seq, np.int64), np.asarray(frame, np.int64)
        self.group = np.asarray(group, np.int64)  # (S,) group id of every cache sequence
        self.frames, self.skeleton = frames, skeleton
        self.downsample, self.flip_prob, self.flip_double = downsample, flip_prob, flip_double
        self._cache = cache
        self._pool = BufferPool(2)  # batch arrays, reused once the loader's consumer drops them
        self.rank = 0  # global DDP rank, set by the DataModule's loader (flip streams differ)
        _check_frames(frames)  # early, not at the first batch

    @property
    def cache(self) -> SequenceCache:
        if self._cache is None:
            self._cache = read_cache(self.cache_folder, mmap=True)
        return self._cache

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = None
        state["_pool"] = BufferPool(self._pool.size)  # no arrays in the pickle
        return state

    def __len__(self) -> int:
        return len(self.seq) * (2 if self.flip_double else 1)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}

    def __getitems__(self, ids: list[int] | np.ndarray) -> dict[str, torch.Tensor]:
        ids = np.asarray(ids, dtype=np.int64)
        cache = self.cache
        m = len(self.seq)
        window = ids % m if self.flip_double else ids  # ids >= M: the mirrored copy
        seq, frame = self.seq[window], self.frame[window]
        where = (cache.offsets, cache.lengths, seq, frame, self.frames, self.downsample)
        if self.gather == "slices":
            x2d, x3d = gather_windows((cache.pos2d, cache.pos3d), *where, self._pool)
        else:
            rows = window_rows(*where)
            x2d, x3d = np.asarray(cache.pos2d[rows]), np.asarray(cache.pos3d[rows])
        flip = None
        if self.flip_double:
            flip = ids >= m
        elif self.flip_prob > 0:
            flip = sample_rng(self.rank).random(len(ids)) < self.flip_prob  # rank-aware
        if flip is not None and flip.any() and self.flip_at == "loader":
            x2d[flip] = flip_pose(x2d[flip], self.skeleton)
            x3d[flip] = flip_pose(x3d[flip], self.skeleton)
        batch = {
            "input_2d": torch.from_numpy(np.ascontiguousarray(x2d, dtype=np.float32)),
            "target_3d": torch.from_numpy(np.ascontiguousarray(x3d, dtype=np.float32)),
            "action": torch.from_numpy(self.group[seq]),
            "seq": torch.from_numpy(seq),
            "frame": torch.from_numpy(frame),
            "index": torch.from_numpy(ids),
        }
        if flip is not None:
            batch["flip_pending" if self.flip_at == "transfer" else "flip"] = torch.from_numpy(flip)
        return batch
