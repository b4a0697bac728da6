"""What ``python -m pose2d predict`` / ``python -m pose3d predict`` write (Lightning
``BasePredictionWriter`` callbacks, added by the CLI for the ``predict`` subcommand).

Each rank keeps its batch outputs on the CPU; at the end of the predict epoch the rows of all
ranks are gathered (padded to a common length, so ranks may hold different counts), duplicates
that a distributed sampler adds are dropped by the sample ``index`` (each sample is written
once), and rank 0 writes the files atomically (temp file in the same folder, then rename).

- :class:`CocoKeypointsWriter` (2D): ``<dir>/keypoints_predict_results.json``, a COCO keypoint
  results list (rescored + OKS-NMS, as evaluated), and optionally ``keypoints_predict.npz`` with
  the raw per-box arrays (``image_id``, ``keypoints (N, 17, 3)`` image px + score, ``box_score``,
  ``area``, ``index``); for an image folder (``--data.predict_images``) also
  ``keypoints_predict_images.json``, the ``images`` list (``id``, ``file_name``).
- :class:`PoseSequenceWriter` (3D): ``<dir>/predictions_3d.npz``, one array per sequence named
  ``<subject>/<action>/<camera>`` holding ``(F, J, 3)`` camera-space root-relative metres at the
  predicted frames, ``frames/<key>`` the frame numbers, ``target/<key>`` the dataset's 3D and
  ``meta`` (JSON: units, joint names, one record per sequence). No pickle: read it with
  ``np.load(path)``; ``python -m pose3d.report predictions_3d.npz`` prints the tables from it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from callbacks.atomic_io import atomic_write, atomic_write_text


def gather_rows(trainer: pl.Trainer, x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x (N_r, ...)`` of every rank (``N_r`` may differ) → ``(sum N_r, ...)``."""
    if trainer.world_size == 1:
        return x
    strategy = trainer.strategy
    n = torch.tensor([x.shape[0]], device=strategy.root_device)
    sizes = strategy.all_gather(n).reshape(-1).tolist()
    pad = torch.zeros((max(sizes) - x.shape[0], *x.shape[1:]), dtype=x.dtype)
    full = strategy.all_gather(torch.cat([x, pad]).to(strategy.root_device)).cpu()
    return torch.cat([full[r, :s] for r, s in enumerate(sizes)])


class _GatheringWriter(BasePredictionWriter):
    """Keeps ``keys`` of every batch output; :meth:`write` gets them gathered and de-duplicated.

    Args:
        output_dir: folder of the files (default: the run folder, ``trainer.default_root_dir``).
    """

    keys: tuple[str, ...] = ()

    def __init__(self, output_dir: str | None = None) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self._rows: dict[str, list[torch.Tensor]] = {}

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._rows = {k: [] for k in self.keys}

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch,
                           batch_idx, dataloader_idx=0) -> None:  # fmt: skip
        for k in self.keys:
            self._rows[k].append(prediction[k].detach().cpu())

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        local = {k: torch.cat(v) if v else torch.zeros(0) for k, v in self._rows.items()}
        rows = {k: gather_rows(trainer, v) for k, v in local.items()}
        self._rows = {}
        if not trainer.is_global_zero:
            return
        _, first = np.unique(rows["index"].numpy(), return_index=True)  # each sample once
        out = Path(self.output_dir or trainer.default_root_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.write(trainer, {k: v.numpy()[first] for k, v in rows.items()}, out)

    def write(self, trainer: pl.Trainer, rows: dict[str, np.ndarray], out: Path) -> None:
        raise NotImplementedError


def predict_dataset(trainer: pl.Trainer):
    """The dataset of the (first) predict dataloader."""
    loader = trainer.predict_dataloaders
    return (loader[0] if isinstance(loader, list | tuple) else loader).dataset


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """``np.savez`` of plain (pickle-free) arrays, written atomically."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))


class CocoKeypointsWriter(_GatheringWriter):
    """COCO keypoint results json (+ optional npz) of ``pose2d predict``.

    Args:
        output_dir: folder of the files (default: the run folder).
        name: file name of the results json.
        npz: also write the raw per-box arrays to ``keypoints_predict.npz``.
        oks_nms_thresh: OKS-NMS threshold of the rescoring step (official 0.9).
    """

    keys = ("index", "image_id", "keypoints", "box_score", "area")

    def __init__(
        self,
        output_dir: str | None = None,
        name: str = "keypoints_predict_results.json",
        npz: bool = False,
        oks_nms_thresh: float = 0.9,
    ) -> None:
        super().__init__(output_dir)
        self.name, self.npz, self.oks_nms_thresh = name, npz, oks_nms_thresh

    def write(self, trainer: pl.Trainer, rows: dict[str, np.ndarray], out: Path) -> None:
        from pose2d.coco_metric import build_results

        results = build_results(rows["image_id"], rows["keypoints"], rows["box_score"],
                                rows["area"], oks_nms_thresh=self.oks_nms_thresh)  # fmt: skip
        path = atomic_write_text(out / self.name, json.dumps(results))
        msg = f"predict: {len(results)} people in {len(set(rows['image_id'].tolist()))} images"
        images = getattr(predict_dataset(trainer), "images", None)
        if images is not None:  # an image folder: which file each image_id is
            names = atomic_write_text(out / "keypoints_predict_images.json",
                                      json.dumps({"images": images}))  # fmt: skip
            msg += f"; image ids -> files in {names}"
        if self.npz:
            save_npz(out / "keypoints_predict.npz", rows)
            msg += f"; raw boxes in {out / 'keypoints_predict.npz'}"
        print(f"{msg} -> {path}")


def sequence_key(record: dict[str, Any]) -> str:
    """``<subject>/<action>/<camera>`` of a cache sequence record."""
    action = record.get("action", record.get("group", record.get("name", "")))
    return f"{record.get('subject', '?')}/{action}/{record.get('camera', '0')}"


class PoseSequenceWriter(_GatheringWriter):
    """Per-sequence 3D predictions of ``pose3d predict`` (see the module docstring).

    Args:
        output_dir: folder of the file (default: the run folder).
        name: file name of the npz.
        with_target: also store the dataset's 3D (``target/<key>``) for scoring.
    """

    keys = ("index", "seq", "frame", "pose_3d", "target_3d")

    def __init__(
        self,
        output_dir: str | None = None,
        name: str = "predictions_3d.npz",
        with_target: bool = True,
    ) -> None:
        super().__init__(output_dir)
        self.name, self.with_target = name, with_target

    def write(self, trainer: pl.Trainer, rows: dict[str, np.ndarray], out: Path) -> None:
        dataset = predict_dataset(trainer)
        # the root joint as evaluation scored it (LiftingModule.eval_root)
        zeroed = bool(getattr(getattr(trainer, "lightning_module", None), "zeroes_root", True))
        records = dataset.cache.sequences
        skeleton = dataset.skeleton
        arrays: dict[str, np.ndarray] = {}
        meta = []
        for s in np.unique(rows["seq"]):
            sel = np.flatnonzero(rows["seq"] == s)
            sel = sel[np.argsort(rows["frame"][sel], kind="stable")]
            key = sequence_key(records[int(s)])
            arrays[key] = rows["pose_3d"][sel].astype(np.float32)
            arrays[f"frames/{key}"] = rows["frame"][sel].astype(np.int64)
            if self.with_target:
                arrays[f"target/{key}"] = rows["target_3d"][sel].astype(np.float32)
            meta.append({**records[int(s)], "key": key, "predicted_frames": int(len(sel))})
        arrays["meta"] = np.array(json.dumps({
            "units": "metres, camera space, root-relative (root joint "
            + ("zeroed)" if zeroed else "as predicted; trained to 0)"),
            "zero_root": zeroed,
            "skeleton": skeleton.name,
            "joint_names": list(skeleton.joint_names),
            "root": int(skeleton.root),
            "sequences": meta,
        }))  # fmt: skip
        path = save_npz(out / self.name, arrays)
        print(f"predict: {len(rows['index'])} frames of {len(meta)} sequences -> {path}")
