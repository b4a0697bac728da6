"""What kind of file a checkpoint argument points at, read without running pickled code.

Every command that takes a checkpoint (``--ckpt_path`` of ``python -m pose2d|pose3d``, i.e.
``make eval-2d/eval-3d CKPT=`` and resume; ``pose3d.infer --detector/--lifter``) calls
:func:`require_checkpoint` before any logger or folder exists, so a wrong file is one line:

* ``lightning_2d`` / ``lightning_3d``: a checkpoint of ``python -m pose2d fit`` (HRNet weights
  ``model.final_layer.*``) / ``python -m pose3d fit`` (lifter weights ``model.joint_embed.*``);
* ``hrnet_state_dict``: a plain HRNet pose state dict (official ``pose_hrnet_*.pth``: bare,
  ``module.``-prefixed, or under ``state_dict``); ``hrnet_imagenet``: the ImageNet classification
  one (``hrnet_w32-36af842e.pth``), usable only as a training init;
* ``poseformer``: an official PoseFormer file (a dict with ``model_pos`` holding
  ``module.Spatial_patch_to_embedding.weight``...), which ``python -m pose3d.convert`` turns into
  a lifter checkpoint;
* ``other``: a torch file that is none of these; ``pickled``: a file holding Python objects a
  weights-only load refuses; ``unreadable``: not a torch file at all (empty, truncated, text).

Files are read with ``torch.load(weights_only=True)`` only. The PoseFormer file's
``random_state`` is a numpy RNG state (a uint32 array), which that refuses; it is read with
exactly the numpy globals that state needs allowed (:data:`NUMPY_RNG_STATE_GLOBALS`), never with
``weights_only=False``.
"""

from __future__ import annotations

import pickle
import pickletools
import re
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.random._pickle as np_pickle
import torch
from numpy._core.multiarray import _reconstruct

from callbacks.user_error import UserError

CheckpointKind = Literal[
    "lightning_2d",
    "lightning_3d",
    "hrnet_state_dict",
    "hrnet_imagenet",
    "poseformer",
    "other",
    "pickled",
    "unreadable",
]

# PoseFormer's ``random_state`` is VideoPose3D's generator RNG: a ``np.random.RandomState``
# object (or its get_state() tuple: 'MT19937', uint32[624], pos, has_gauss, cached_gaussian). It
# pickles as exactly these globals: numpy's own RandomState / MT19937 constructors and the
# uint32 key array; files written under numpy 1.x name the array reconstructor
# ``numpy.core.multiarray``.
NUMPY_RNG_STATE_GLOBALS: list = [
    _reconstruct,
    (_reconstruct, "numpy.core.multiarray._reconstruct"),
    np.ndarray,
    np.dtype,
    type(np.dtype(np.uint32)),
    np_pickle.__randomstate_ctor,
    np_pickle.__bit_generator_ctor,
    np.random.MT19937,
    np.random.RandomState,
]

# What a detector / lifter argument may be (pose3d.infer, the exports, pose2d.export_keypoints).
DETECTOR_KINDS: tuple[CheckpointKind, ...] = ("lightning_2d", "hrnet_state_dict")
LIFTER_KINDS: tuple[CheckpointKind, ...] = ("lightning_3d",)

_DESCRIPTION: dict[str, str] = {
    "lightning_2d": "a 2D detector checkpoint of python -m pose2d fit",
    "lightning_3d": "a 3D lifter checkpoint of python -m pose3d fit",
    "hrnet_state_dict": "a plain HRNet pose state dict in the official pose_hrnet_*.pth layout",
    "hrnet_imagenet": "an ImageNet HRNet classification state dict",
    "poseformer": "an official PoseFormer checkpoint",
}


class CheckpointError(UserError):
    """A checkpoint argument that cannot be used where it was given (one line, exit status 2)."""


@dataclass(frozen=True)
class CheckpointInfo:
    """What :func:`classify_checkpoint` found.

    Args:
        path: the file.
        kind: see the module docstring.
        detail: one phrase on what is inside (architecture read from tensor shapes, top-level
            keys, or why it could not be read).
        width: HRNet width (32, 48...) for the HRNet kinds, else None.
        frames: receptive field T for the lifter / PoseFormer kinds when readable, else None.
    """

    path: Path
    kind: CheckpointKind
    detail: str = ""
    width: int | None = None
    frames: int | None = None

    @property
    def description(self) -> str:
        """Human phrase for :attr:`kind`, with :attr:`detail`."""
        base = _DESCRIPTION.get(self.kind, "")
        if self.kind == "other":
            base = "a torch file that is not a checkpoint of this project"
        elif self.kind == "pickled":
            base = "a file holding pickled Python objects that a weights-only load refuses"
        elif self.kind == "unreadable":
            base = "not a PyTorch checkpoint"
        return f"{base} ({self.detail})" if self.detail else base


def _torch_load(path: Path, safe_globals: Sequence = ()) -> Any:
    """weights_only=True load, memory-mapped when the file is in the zip format (cheap)."""
    mmap = zipfile.is_zipfile(path)
    with torch.serialization.safe_globals(list(safe_globals)), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected pickle protocol")
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def _strip(sd: dict) -> dict:
    """State-dict keys without ``module.`` / mmpose ``backbone.`` prefixes."""
    out = {}
    for k, v in sd.items():
        k = str(k)
        for prefix in ("module.", "backbone."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
        out[k] = v
    return out


def _hrnet_width(sd: dict) -> int | None:
    w = sd.get("transition1.0.0.weight")
    return int(w.shape[0]) if isinstance(w, torch.Tensor) else None


def _shape(sd: dict, key: str, dim: int) -> int | None:
    v = sd.get(key)
    return int(v.shape[dim]) if isinstance(v, torch.Tensor) and v.dim() > dim else None


def _classify_object(path: Path, obj: Any) -> CheckpointInfo:
    if not isinstance(obj, dict):
        return CheckpointInfo(path, "other", f"holds a {type(obj).__name__}, not a dict")
    sd = obj.get("state_dict")
    if isinstance(sd, dict) and ("pytorch-lightning_version" in obj or "hyper_parameters" in obj):
        model = {k[len("model.") :]: v for k, v in sd.items() if str(k).startswith("model.")}
        if "final_layer.weight" in model:
            joints = _shape(model, "final_layer.weight", 0)
            width = _hrnet_width(model)
            return CheckpointInfo(
                path, "lightning_2d", f"HRNet-W{width}, {joints} joints", width=width
            )
        if "joint_embed.weight" in model:
            frames = _shape(model, "temporal_pos", 1)
            return CheckpointInfo(path, "lightning_3d", f"T={frames}", frames=frames)
        return CheckpointInfo(
            path, "other", f"a Lightning checkpoint of another model ({len(sd)} tensors)"
        )
    pos = obj.get("model_pos")
    if isinstance(pos, dict):
        pos = _strip(pos)
        if "Spatial_patch_to_embedding.weight" in pos:
            frames = _shape(pos, "Temporal_pos_embed", 1)
            return CheckpointInfo(path, "poseformer", f"T={frames}", frames=frames)
    flat = _strip(sd if isinstance(sd, dict) else obj)
    if "transition1.0.0.weight" in flat and "stage4.0.fuse_layers.0.1.0.weight" in flat:
        width = _hrnet_width(flat)
        if any(k.split(".")[0] in ("incre_modules", "classifier") for k in flat):
            return CheckpointInfo(path, "hrnet_imagenet", f"width {width}", width=width)
        joints = _shape(flat, "final_layer.weight", 0)
        return CheckpointInfo(
            path, "hrnet_state_dict", f"HRNet-W{width}, {joints} joints", width=width
        )
    keys = list(obj)
    if keys and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return CheckpointInfo(path, "other", f"a plain state dict of {len(keys)} tensors, "
                              f"first key {keys[0]!r}")  # fmt: skip
    shown = ", ".join(map(str, keys[:6])) + (", ..." if len(keys) > 6 else "")
    return CheckpointInfo(path, "other", f"top-level keys: {shown or 'none'}")


def _pickle_globals(data: bytes) -> list[str]:
    """``module.name`` of every GLOBAL / STACK_GLOBAL in the first pickle of ``data``, read
    with :func:`pickletools.genops` (opcodes are listed, nothing is executed)."""
    found: list[str] = []
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name == "GLOBAL":
                found.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
    except Exception:  # noqa: BLE001 - a damaged pickle: report what was read so far
        pass
    return sorted(set(found))


def _refused_globals(path: Path, error: Exception) -> list[str]:
    """The globals a weights-only load refused (nothing is executed to find them)."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - legacy (non-zip) format: scan the pickle's opcodes
        names = _pickle_globals(path.read_bytes())
        return names or re.findall(r"GLOBAL ([\w.]+)", str(error))[:1]


def classify_checkpoint(path: str | Path) -> CheckpointInfo:
    """Classify ``path`` (see the module docstring) without running pickled code.

    Raises :class:`CheckpointError` only when the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    if path.stat().st_size == 0:
        return CheckpointInfo(path, "unreadable", "empty file")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(2)
        if head == b"PK":  # a zip without its central directory: cut short
            return CheckpointInfo(path, "unreadable", "truncated or damaged zip archive")
        if head[:1] != b"\x80":  # the pickle PROTO opcode that starts a legacy torch file
            return CheckpointInfo(path, "unreadable", "not a zip or pickle file")
    try:
        obj = _torch_load(path)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" not in str(e):
            return CheckpointInfo(path, "unreadable", "not a zip or pickle file")
        try:  # an official PoseFormer file: its numpy RNG state needs these globals only
            obj = _torch_load(path, NUMPY_RNG_STATE_GLOBALS)
        except pickle.UnpicklingError:
            refused = _refused_globals(path, e)
            shown = ", ".join(refused[:4]) + (", ..." if len(refused) > 4 else "")
            return CheckpointInfo(path, "pickled", f"refused: {shown or 'unknown globals'}")
        except Exception as e2:  # noqa: BLE001 - a damaged file: say why, in one phrase
            return CheckpointInfo(path, "unreadable", _short(e2))
    except Exception as e:  # noqa: BLE001 - truncated zip, text file, ...
        return CheckpointInfo(path, "unreadable", _short(e))
    return _classify_object(path, obj)


def load_poseformer_file(path: str | Path) -> dict:
    """An official PoseFormer checkpoint as a dict (``model_pos``, ``epoch``, ``random_state``...),
    read with ``weights_only=True`` plus :data:`NUMPY_RNG_STATE_GLOBALS` only.

    Raises :class:`CheckpointError` when the file is missing or not a PoseFormer checkpoint.
    """
    info = require_checkpoint(path, ("poseformer",), "PoseFormer file")
    return _torch_load(info.path, NUMPY_RNG_STATE_GLOBALS)


def _short(e: Exception) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "central directory" in msg or "zip archive" in msg:
        return "truncated or damaged zip archive"
    return msg[:160]


def _how_to_use(info: CheckpointInfo, wants_3d: bool) -> str:
    """The way out for a file of the wrong kind."""
    p = info.path
    if info.kind == "poseformer" and wants_3d:
        t = info.frames or "T"
        return (
            f"convert it first: python -m pose3d.convert poseformer {p} --frames {t} "
            f"--out {p.with_suffix('.ckpt')}"
        )
    if info.kind in ("hrnet_state_dict", "hrnet_imagenet") and not wants_3d:
        return f"use it to initialise training: --model.pretrained={p}"
    if info.kind == "other" and "plain state dict" in info.detail:
        return "a plain state dict has no model configuration; give the .ckpt written by " + (
            "python -m pose3d fit" if wants_3d else "python -m pose2d fit"
        )
    if info.kind == "pickled":
        return "only tensors and plain containers are read (torch.load weights_only=True)"
    return "give a .ckpt written by " + (
        "python -m pose3d fit (runs/pose3d/<run>/checkpoints/)"
        if wants_3d
        else "python -m pose2d fit (runs/pose2d/<run>/checkpoints/)"
    )


def require_checkpoint(
    path: str | Path,
    accept: Sequence[CheckpointKind],
    role: str = "checkpoint",
    hint: str | None = None,
) -> CheckpointInfo:
    """:func:`classify_checkpoint`, raising a one-line :class:`CheckpointError` unless the kind
    is in ``accept``.

    Args:
        path: the file given by the user.
        accept: kinds usable here, e.g. ``("lightning_3d",)`` for ``--lifter``.
        role: how the argument is called in the message (``--ckpt_path``, ``--lifter``...).
        hint: extra advice when the file is of an accepted *other* stage (e.g. swapped flags).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{role} {path}: file not found")
    info = classify_checkpoint(path)
    if info.kind in accept:
        return info
    wants_3d = any(k in ("lightning_3d", "poseformer") for k in accept)
    expected = "a 3D lifter checkpoint" if wants_3d else "a 2D detector checkpoint"
    wrong_stage = info.kind in (
        ("lightning_2d", "hrnet_state_dict", "hrnet_imagenet")
        if wants_3d
        else ("lightning_3d", "poseformer")
    )
    way_out = hint if wrong_stage and hint else _how_to_use(info, wants_3d)
    raise CheckpointError(
        f"{role} {path} is {info.description}, but {expected} is expected here; {way_out}"
    )
