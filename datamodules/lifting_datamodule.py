"""Shared LightningDataModule plumbing for the 2D→3D lifting datasets (H36M, 3DHP, synthetic).

Subclasses fill ``self.train_set`` / ``self.test_set`` (``PoseWindowDataset``) in ``setup``
with :meth:`LiftingDataModule._read_cache` and :meth:`LiftingDataModule._windows`; this base turns
them into DataLoaders that gather whole batches (``collate_batched``). Validation and test use the
same windows: one per (valid) frame of the test sequences. Training windows are flipped as
``flip`` says; with "double" (the default of the dataset modules, as the official generator) an
epoch holds 2× the training windows, so per-epoch schedules (lr decay) match the official epoch.
The training loader gathers the windows as stored and flags the ones to mirror; the mirror runs in
``on_after_batch_transfer``, on the training device (a loop that iterates ``train_dataloader()``
itself must pass each batch through that hook to see the mirrored windows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch.utils.data import DataLoader

from datamodules.sample_rng import current_rank
from datamodules.sequence_cache import SequenceCache, cache_exists, read_cache
from datamodules.skeleton import Skeleton
from datamodules.windows import (
    PoseWindowDataset,
    apply_pending_flips,
    build_samples,
    collate_batched,
)

# Training flip augmentation: "double" = every window twice per epoch, as is and mirrored
# (VideoPose3D/PoseFormer ChunkedGenerator); "random" = mirrored with probability flip_prob.
FlipMode = Literal["none", "double", "random"]
FLIP_MODES: tuple[str, ...] = ("none", "double", "random")


class LiftingDataModule(pl.LightningDataModule):
    skeleton: Skeleton
    group_names: list[str]
    root: Path
    cache_folder: Path  # a property in the subclasses
    # Frame rate of the dataset's sequences (Human3.6M: 50 fps); None when it varies (3DHP).
    dataset_fps: float | None = 50.0

    @property
    def frame_rate(self) -> float | None:
        """Frames per second the lifter is trained at: the dataset's rate ÷ ``downsample``."""
        return None if self.dataset_fps is None else self.dataset_fps / self.downsample

    def __init__(
        self,
        frames: int,
        batch_size: int,
        eval_batch_size: int | None,
        num_workers: int,
        pin_memory: bool | None,
        downsample: int = 1,
        stride: int = 1,
        flip_prob: float = 0.0,
        flip: FlipMode = "none",
    ) -> None:
        super().__init__()
        if flip not in FLIP_MODES:
            raise ValueError(f"flip mode must be one of {FLIP_MODES}, got {flip!r}")
        self.frames = frames
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.downsample, self.stride = downsample, stride
        self.flip, self.flip_prob = flip, flip_prob
        self.train_set: PoseWindowDataset | None = None
        self.test_set: PoseWindowDataset | None = None

    def _raw_present(self) -> bool:
        raise NotImplementedError

    def _prepare_command(self) -> str:
        raise NotImplementedError

    def _missing_message(self) -> str:
        raise NotImplementedError

    def _will_prepare(self) -> bool:
        """Whether ``prepare_data`` generates the cache itself (only a synthetic generator
        does: the public files hold pickles and are read by the explicit prepare command)."""
        return False

    def check_files(self, stage: str | None = None) -> None:
        """Raise the missing-data error up front (the CLI calls this before a run, and its
        logger, starts); data that ``prepare_data`` will generate or prepare is not missing."""
        if not self._will_prepare():
            self._check_cache()

    def _check_cache(self) -> None:
        """A clear error unless the cache exists: how to prepare it when the raw files are
        there, else the dataset's missing-files message."""
        if not cache_exists(self.cache_folder):
            if self._raw_present():
                raise FileNotFoundError(
                    f"found the raw files in {self.root} but no prepared cache "
                    f"{self.cache_folder}/; build it once (the files hold pickles, read only by "
                    f"this command): {self._prepare_command()}"
                )
            raise FileNotFoundError(self._missing_message())

    def _read_cache(self) -> SequenceCache:
        """The prepared cache (memory-mapped), or the error of :meth:`_check_cache`."""
        self._check_cache()
        cache = read_cache(self.cache_folder, mmap=True)
        if cache.meta.get("skeleton") != self.skeleton.name:
            raise ValueError(f"{self.cache_folder} holds {cache.meta.get('skeleton')!r} poses")
        return cache

    def _windows(
        self,
        cache: SequenceCache,
        seqs: np.ndarray,
        group: np.ndarray,
        train: bool,
        valid: np.ndarray | None = None,
        offsets: np.ndarray | None = None,
    ) -> PoseWindowDataset:
        """Windows centred on the frames of sequences ``seqs``: training ones at ``stride`` with
        flip augmentation, evaluation ones at every (``valid``) frame without."""
        seq, frame = build_samples(
            cache.lengths,
            seqs,
            self.stride if train else 1,
            self.downsample,
            valid=valid,
            offsets=offsets,
        )
        return PoseWindowDataset(
            self.cache_folder,
            seq,
            frame,
            group,
            self.frames,
            self.skeleton,
            self.downsample,
            self.flip_prob if train and self.flip == "random" else 0.0,
            cache=cache,
            flip_double=train and self.flip == "double",
            flip_at="transfer",
        )

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """Mirror the training windows the loader flagged (``flip_pending``), on the device the
        batch was moved to; the training step sees the batch ``flip_at="loader"`` would give."""
        return apply_pending_flips(batch, self.skeleton)

    def describe_sample(self, batch: dict, i: int) -> str:
        """Where sample ``i`` of a batch comes from (cache folder, sequence, centre frame): named
        in the non-finite-input error of ``callbacks.nonfinite``."""
        rec = read_cache(self.cache_folder, mmap=True).sequences[int(batch["seq"][i])]
        keys = ("subject", "action", "camera", "sequence", "group")
        who = " / ".join(str(rec[k]) for k in keys if k in rec)
        return f"{self.cache_folder}: {who}, frame {int(batch['frame'][i])}"

    def _loader(self, dataset: PoseWindowDataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("call setup() before asking for a dataloader")
        dataset.rank = current_rank(self.trainer)  # flip draws differ between DDP ranks
        if train and len(dataset) < self.batch_size:
            rank_zero_warn(
                f"batch_size {self.batch_size} is larger than the {len(dataset)} training "
                f"windows of {self.cache_folder}: every epoch is one step on the whole split; "
                "lower --data.init_args.batch_size"
            )
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            num_workers=self.num_workers,
            collate_fn=collate_batched,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader | list:
        if self.test_set is None and self.train_set is not None:
            return []  # training-only download: fit without validation (announced in setup)
        return self._loader(self.test_set, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, train=False)

    def predict_dataloader(self) -> DataLoader:
        """The evaluation windows (``pose3d predict`` writes one 3D pose per frame)."""
        return self._loader(self.test_set, train=False)
