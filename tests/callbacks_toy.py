"""A tiny 3D-contract LightningModule/DataModule for testing the shared CLI and callbacks without
the real trainers (batch keys and ``self.model`` as in docs/CONTRACTS.md).

Run as a script it is a full PoseCLI program: ``python tests/callbacks_toy.py fit ...``.
``--model.nan_at_step=N`` injects a NaN loss at global step N (on ``--model.nan_rank`` only);
``--model.ballast_mb=M`` adds M MB to every checkpoint.
"""

from __future__ import annotations

import os
import sys

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from callbacks.cli import exit_on_missing_files, run_cli
from datamodules.skeleton import H36M

GROUPS = ["Walking", "Sitting", "Eating"]


class ToyPoses(Dataset):
    """Deterministic random 2D/3D pairs: target = fixed linear map of the input (learnable)."""

    def __init__(self, n: int, frames: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        j = H36M.num_joints
        self.x = torch.randn(n, frames, j, 2, generator=g)
        w = torch.randn(2, 3, generator=torch.Generator().manual_seed(0)) * 0.1
        self.y = self.x @ w
        self.y[:, :, H36M.root] = 0
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return {
            "input_2d": self.x[i],
            "target_3d": self.y[i],
            "action": torch.tensor(i % len(GROUPS)),
            "index": torch.tensor(i),
        }


class ToyData(pl.LightningDataModule):
    def __init__(self, frames: int = 3, batch_size: int = 8, n_train: int = 64, n_val: int = 21):
        super().__init__()
        self.frames, self.batch_size = frames, batch_size
        self.n_train, self.n_val = n_train, n_val
        self.skeleton = H36M
        self.group_names = list(GROUPS)

    def train_dataloader(self) -> DataLoader:
        ds = ToyPoses(self.n_train, self.frames, seed=1)
        return DataLoader(ds, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(ToyPoses(self.n_val, self.frames, seed=2), batch_size=self.batch_size)


class ToyLifter(nn.Module):
    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.GELU(), nn.Linear(hidden, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, J, 2) -> (B, T, J, 3)
        return self.net(x)


class ToyModule(pl.LightningModule):
    def __init__(
        self,
        frames: int = 3,
        hidden: int = 16,
        lr: float = 1e-2,
        nan_at_step: int = -1,
        nan_rank: int = -1,
        sleep_s: float = 0.0,
        ballast_mb: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = ToyLifter(hidden)
        # dead weight that makes checkpoint writes take a while (kill-during-write tests)
        self.register_buffer("ballast", torch.zeros(int(ballast_mb * 2**20) // 4))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if self.hparams.sleep_s:
            import time

            time.sleep(self.hparams.sleep_s)
        pred = self.model(batch["input_2d"])
        loss = (pred - batch["target_3d"]).norm(dim=-1).mean()
        rank_ok = self.hparams.nan_rank in (-1, self.global_rank)
        if self.global_step == self.hparams.nan_at_step and rank_ok:
            loss = loss * float("nan")
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        err = (self.model(batch["input_2d"]) - batch["target_3d"]).norm(dim=-1).mean((1, 2))
        self.log("val/mpjpe", 1000 * err.mean(), sync_dist=True)
        for a, name in enumerate(GROUPS):
            m = batch["action"] == a
            if m.any():
                self.log(f"val/mpjpe/{name}", 1000 * err[m].mean(), sync_dist=True)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        return {"optimizer": opt, "lr_scheduler": sched}


def main(args: list[str] | None = None):
    os.environ.setdefault("WANDB_SILENT", "true")
    return run_cli(
        ToyModule, ToyData, links=[("data.frames", "model.frames")], args=args, monitor="val/mpjpe"
    )


if __name__ == "__main__":
    sys.exit(exit_on_missing_files(main, None, ""))
