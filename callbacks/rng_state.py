"""Save and restore the global random generators with each checkpoint, so a resumed run draws
the same shuffles, augmentations and dropout masks as an uninterrupted one.

Lightning restores model, optimizer, scheduler and loop counters but not the RNGs. The states are
stored as tensors / ints / lists only, so the checkpoint still loads with
``torch.load(..., weights_only=True)`` (a raw numpy state would not). Rank 0's state is the one
saved; every rank gets it back, as every rank starts from the same seed anyway
(``seed_everything`` seeds all ranks alike; the augmentation streams mix in the rank,
``datamodules/sample_rng.py``).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback


def collect_rng_states() -> dict[str, Any]:
    """Global torch / CUDA / numpy / Python RNG states as weights_only-safe objects."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "torch.cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "state": list(py_state), "gauss": gauss},
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Inverse of :func:`collect_rng_states`."""
    torch.set_rng_state(states["torch"].cpu())
    cuda = states.get("torch.cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    n = states["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = states["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


class RNGState(Callback):
    """Puts :func:`collect_rng_states` into every checkpoint and restores it on resume."""

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["rng_states"] = collect_rng_states()

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if "rng_states" in checkpoint:
            set_rng_states(checkpoint["rng_states"])
