"""Shared LightningDataModule plumbing for the 2D→3D lifting datasets (H36M, 3DHP, synthetic).

Subclasses fill ``self.train_set`` / ``self.test_set`` (``PoseWindowDataset``) in ``setup``;
this base turns them into DataLoaders that gather whole batches (``collate_batched``). Validation
and test use the same windows: one per (valid) frame of the test sequences.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from datamodules.skeleton import Skeleton
from datamodules.windows import PoseWindowDataset, collate_batched


class LiftingDataModule(pl.LightningDataModule):
    skeleton: Skeleton
    group_names: list[str]

    def __init__(
        self,
        frames: int,
        batch_size: int,
        eval_batch_size: int | None,
        num_workers: int,
        pin_memory: bool | None,
    ) -> None:
        super().__init__()
        self.frames = frames
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.train_set: PoseWindowDataset | None = None
        self.test_set: PoseWindowDataset | None = None

    def _loader(self, dataset: PoseWindowDataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("call setup() before asking for a dataloader")
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

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, train=False)
