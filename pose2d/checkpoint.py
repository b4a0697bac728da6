"""Inference loading of a trained detector from our Lightning checkpoint (no pickle)."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

import torch

from pose2d.hrnet import PoseHighResolutionNet
from pose2d.official import (
    hrnet_architecture,
    input_size_from_name,
    is_plain_hrnet,
    read_state_dict,
)


def load_detector(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> PoseHighResolutionNet:
    """Rebuild :class:`PoseHighResolutionNet` from a ``HeatmapModule`` checkpoint, in eval mode.

    Reads ``hyper_parameters`` for the architecture and the ``model.*`` weights, with
    ``torch.load(weights_only=True)``; the ``pretrained`` path is not re-read. An official plain
    state dict (``pose_hrnet_w32_256x192.pth``) is built from its tensor shapes
    (``pose2d.official``) and loaded strictly.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"detector checkpoint not found: {path} (a .ckpt from pose2d fit)")
    if is_plain_hrnet(path):
        sd = read_state_dict(path)
        model = PoseHighResolutionNet(**hrnet_architecture(sd, path))
        model.load_state_dict(sd, strict=True)
        return model.to(map_location).eval()
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a Lightning checkpoint (no 'state_dict')")
    hp = dict(ckpt.get("hyper_parameters") or {})
    accepted = set(inspect.signature(PoseHighResolutionNet).parameters) - {"pretrained"}
    kwargs = {k: v for k, v in hp.items() if k in accepted and v is not None}
    model = PoseHighResolutionNet(**kwargs)
    sd = {k[len("model.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    if not sd:
        raise ValueError(f"{path}: no 'model.*' weights in the checkpoint's state_dict")
    model.load_state_dict(sd, strict=True)
    return model.to(map_location).eval()


def _hparams(path: str | Path) -> tuple[dict, dict]:
    """(module, datamodule) hyper-parameters of a checkpoint, read with weights_only=True
    (none for a plain state dict)."""
    if is_plain_hrnet(path):
        return {}, {}
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return dict(ckpt.get("hyper_parameters") or {}), dict(
        ckpt.get("datamodule_hyper_parameters") or {}
    )


def detector_input_size(path: str | Path, default: tuple[int, int] = (192, 256)) -> tuple[int, int]:
    """The crop (w, h) the detector was trained at: the data module's ``input_size`` stored in
    the checkpoint (``datamodule_hyper_parameters``), for an official plain state dict the
    ``<H>x<W>`` of its file name, else ``default``."""
    if is_plain_hrnet(path):
        return input_size_from_name(path) or default
    module_hp, data_hp = _hparams(path)
    for hp in (data_hp, module_hp):
        size = hp.get("input_size")
        if size:
            return int(size[0]), int(size[1])
    return default


def detector_decode_method(path: str | Path, default: str = "standard") -> str:
    """The heatmap decoding the detector was validated with (``decode_method``): a UDP-trained
    detector must be decoded with UDP geometry, so inference follows the checkpoint."""
    return str(_hparams(path)[0].get("decode_method") or default)


def add_input_size_argument(parser: argparse.ArgumentParser) -> None:
    """``--input-size W H`` for the CLIs that run a detector checkpoint (resolved by
    :func:`detector_input_size` when not given)."""
    parser.add_argument(
        "--input-size",
        type=int,
        nargs=2,
        default=None,
        metavar=("W", "H"),
        help="detector crop size (default: from the checkpoint, else 192 256)",
    )


def add_decode_argument(parser: argparse.ArgumentParser) -> None:
    """``--decode`` for the CLIs that decode heatmaps (resolved by :func:`detector_decode_method`
    when not given)."""
    parser.add_argument(
        "--decode",
        default=None,
        choices=("standard", "dark", "udp"),
        help="heatmap decoding (default: the checkpoint's decode_method)",
    )
