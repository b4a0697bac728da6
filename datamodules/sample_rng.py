"""Per-sample augmentation randomness that differs between DDP ranks and DataLoader workers.

``seed_everything`` seeds every DDP rank alike, and a DataLoader seeds worker ``w`` with
``base_seed + w`` where ``base_seed`` comes from the (identical) main-process RNG, so the torch
RNG of worker ``w`` is the same on every rank, as is the main-process RNG with ``num_workers=0``.
Drawing augmentations from it directly gives both ranks the same stream (flip, scale, rotation
of their k-th sample). :func:`sample_rng` mixes one torch draw with the global rank: streams
differ by rank, worker and epoch (a new ``base_seed`` per epoch), and stay reproducible from the
seed, also across a resume (the main RNG is restored from the checkpoint by ``RNGState``).
"""

from __future__ import annotations

import numpy as np
import torch


def current_rank(trainer: object | None = None) -> int:
    """The global rank of this process: torch.distributed's when initialised, else the
    trainer's, else 0. Call it in the main process (the value travels with the dataset)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return int(torch.distributed.get_rank())
    return int(getattr(trainer, "global_rank", 0) or 0)


def sample_rng(rank: int) -> np.random.Generator:
    """A numpy generator for one sample (or batch): one draw of this process's torch RNG, mixed
    with ``rank`` through numpy's SeedSequence."""
    return np.random.default_rng([int(torch.randint(0, 2**62, ()).item()), int(rank)])
