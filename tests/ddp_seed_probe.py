"""DDP probe: every rank trains on the SAME samples and records the augmentation it draws.

``python tests/ddp_seed_probe.py <coco_root> <h36m_root> <out.json> [devices]`` runs two short
fits (each after ``seed_everything(7)``) with the real 2D and 3D DataModules' training loaders
(2D with 2 DataLoader workers, 3D in the main process) and writes, per fit, rank and step, a
digest of every augmented 2D crop and the flip decision of every 3D window. The fixture
(:func:`write_fixture`, written first) makes all samples identical, so two ranks draw different
augmentations exactly when their crops / flips differ.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from datamodules.coco import CocoKeypointsDataModule
from datamodules.h36m import H36MDataModule, prepare_h36m
from datamodules.h36m_files import write_2d_h36m, write_3d_h36m
from datamodules.synthetic_coco import generate_synthetic_coco

SAMPLES = 16  # identical annotations / windows per split


def write_fixture(coco_root: Path, h36m_root: Path) -> None:
    """One synthetic COCO image whose first person is annotated SAMPLES times; an H36M source
    ``const`` whose every frame is the same pose with all joints right of the image centre."""
    generate_synthetic_coco(coco_root, num_train=1, num_val=1, seed=0)
    ann = coco_root / "annotations" / "person_keypoints_train2017.json"
    coco = json.loads(ann.read_text())
    person = next(a for a in coco["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"])
    coco["annotations"] = [dict(person, id=i + 1) for i in range(SAMPLES)]
    ann.write_text(json.dumps(coco))
    rng = np.random.default_rng(0)
    world = np.repeat(rng.normal(0, 0.3, (1, 32, 3)) + [0, 0, 5], SAMPLES, 0).astype(np.float32)
    px = np.repeat(rng.uniform(600, 900, (1, 17, 2)), SAMPLES, 0).astype(np.float32)
    subjects = ("S1", "S9")
    write_3d_h36m(h36m_root, {s: {"Walking": world} for s in subjects})
    write_2d_h36m(h36m_root, "const", {s: {"Walking": [px] * 4} for s in subjects})
    prepare_h36m(h36m_root, "const")


class Probe(pl.LightningModule):
    def __init__(self, coco_root: str, h36m_root: str) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.coco = CocoKeypointsDataModule(
            root=coco_root, input_size=(48, 64), batch_size=4, num_workers=2, pin_memory=False
        )
        self.h36m = H36MDataModule(
            root=h36m_root, keypoints="const", frames=1, batch_size=8, num_workers=0,
            train_subjects=("S1",), test_subjects=("S9",), flip_prob=0.5, flip_mode="random",
            pin_memory=False,
        )  # fmt: skip
        self.records: list[dict] = []

    def train_dataloader(self):
        self.coco.setup("fit")
        self.h36m.setup("fit")
        return {"coco": self.coco.train_dataloader(), "h36m": self.h36m.train_dataloader()}

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        # the loaders are this module's, not a DataModule's: apply the H36M module's hook here
        batch["h36m"] = self.h36m.on_after_batch_transfer(batch["h36m"], dataloader_idx)
        return batch

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        crops = [
            hashlib.sha1(im.numpy().tobytes()).hexdigest()[:10] for im in batch["coco"]["image"]
        ]
        flips = (batch["h36m"]["input_2d"][:, 0, 0, 0] < 0).tolist()  # mirrored: x < 0
        self.records.append(
            {"rank": self.global_rank, "epoch": self.current_epoch, "step": batch_idx,
             "crops": crops, "flips": flips}
        )  # fmt: skip
        return (self.w * 0).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def main(coco_root: str, h36m_root: str, out: str, devices: int = 2) -> None:
    fits = []
    for _ in range(2):  # the rerun: same seed, same draws
        pl.seed_everything(7, workers=True)
        probe = Probe(coco_root, h36m_root)
        trainer = pl.Trainer(
            accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto",
            max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
        )  # fmt: skip
        trainer.fit(probe)
        fits.append(probe.records)
    Path(f"{out}.rank{trainer.global_rank}").write_text(json.dumps(fits))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:]))
