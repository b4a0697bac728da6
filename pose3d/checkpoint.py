"""Load a trained :class:`PoseLifter` from a LiftingModule checkpoint, without Lightning."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch

from callbacks.cli_args import flag_given, flag_value, subcommand
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


def _flag_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def architecture_args(args: list[str]) -> list[str]:
    """Flags that build the model of the ``--ckpt_path`` checkpoint for ``validate``/``test``/
    ``predict``: its recorded architecture (``module.ARCHITECTURE_KEYS``) wins over the config,
    a flag given on the command line wins over the checkpoint. ``[]`` for ``fit`` (a resumed
    run keeps its config; a mismatch is refused in ``on_load_checkpoint``) and for files without
    readable hyper-parameters (the checkpoint check reports those)."""
    from pose3d.module import ARCHITECTURE_KEYS

    path = flag_value(args, "--ckpt_path")
    if subcommand(args) not in ("validate", "test", "predict") or not path:
        return []
    if not Path(path).is_file():
        return []
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        hp = dict(ckpt.get("hyper_parameters") or {})
        is_lifter = "model.joint_embed.weight" in (ckpt.get("state_dict") or {})
    except Exception:  # noqa: BLE001 - not ours to report here
        return []
    if not is_lifter:  # e.g. a 2D checkpoint: the checkpoint check says what it is
        return []
    extra = []
    for key in ARCHITECTURE_KEYS:
        flag = "--data.init_args.frames" if key == "frames" else f"--model.{key}"
        if key in hp and not flag_given(args, flag):
            extra.append(f"{flag}={_flag_value(hp[key])}")
    return extra
