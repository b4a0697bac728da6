"""Load a trained :class:`PoseLifter` from a LiftingModule checkpoint, without Lightning."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch

from pose3d.lifter import PoseLifter


def lifter_kwargs(hparams: dict) -> dict:
    """The subset of a LiftingModule's hyper-parameters that PoseLifter takes."""
    names = set(inspect.signature(PoseLifter.__init__).parameters) - {"self"}
    return {k: v for k, v in hparams.items() if k in names}


def load_lifter(path: str | Path, map_location: str | torch.device = "cpu") -> PoseLifter:
    """Rebuild the network from ``hyper_parameters`` and load the ``model.*`` weights (eval mode).

    Reads with ``torch.load(weights_only=True)``: no pickled code runs.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - report which file is bad, whatever the reason
        raise ValueError(f"cannot read checkpoint {path}: {e}") from e
    if "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise ValueError(
            f"{path} is not a LiftingModule checkpoint (no state_dict/hyper_parameters)"
        )
    model = PoseLifter(**lifter_kwargs(dict(ckpt["hyper_parameters"])))
    state = {k[len("model.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    model.load_state_dict(state)
    return model.eval()
