"""Official HRNet COCO pose checkpoints (``pose_hrnet_w32_256x192.pth`` ...) used as they are.

The file is a plain state dict (bare, ``module.``-prefixed, or under ``state_dict``), read with
``torch.load(weights_only=True)``. It carries no configuration, so:

* the architecture (width, joints, and the depth knobs) is read from the tensor shapes
  (:func:`hrnet_architecture`);
* the input size comes from the official file-name convention ``..._<H>x<W>.pth``
  (:func:`input_size_from_name`) or a flag;
* evaluation and inference use the official test settings: flip test with the 1-px heatmap
  shift, standard decoding, box rescoring + OKS-NMS 0.9 (inside ``COCOKeypointMetric``) and the
  official person boxes (``COCO_val2017_detections_AP_H_56_person.json``, score threshold 0).

:func:`official_eval_args` turns ``python -m pose2d validate --ckpt_path=<file>.pth`` (what
``make eval-2d CKPT=<file>.pth`` runs) into the equivalent run that initialises the model from the
file (``--model.pretrained``, strict load) instead of resuming a Lightning checkpoint.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from callbacks.cli_args import drop_flag, flag_given
from pose2d.pretrained import _unwrap

DEFAULT_DETECTIONS = "person_detection_results/COCO_val2017_detections_AP_H_56_person.json"
# Official test settings (experiments/coco/hrnet/*.yaml TEST section), as HeatmapModule flags.
OFFICIAL_TEST_FLAGS = {
    "--model.flip_test": "true",
    "--model.shift_heatmap": "true",
    "--model.decode_method": "standard",
    "--data.det_score_thresh": "0.0",
}


class OfficialCheckpointError(ValueError):
    """A plain state dict that is not an HRNet pose model this project can build."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a plain HRNet pose state dict, prefixes stripped (weights_only load)."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    return _unwrap(obj, path)


def is_plain_hrnet(path: str | Path) -> bool:
    """Whether ``path`` is a plain HRNet pose state dict (not a Lightning checkpoint)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - unreadable files are reported by the checkpoint check
        return False
    if not isinstance(obj, dict) or "pytorch-lightning_version" in obj:
        return False
    sd = obj.get("state_dict", obj)
    if not isinstance(sd, dict):
        return False
    keys = {str(k).removeprefix("module.") for k in sd}
    return "final_layer.weight" in keys and "transition1.0.0.weight" in keys


def hrnet_architecture(sd: dict[str, torch.Tensor], path: str | Path = "") -> dict:
    """:class:`PoseHighResolutionNet` arguments from the tensor shapes of a pose state dict:
    ``width`` (32/48), ``num_joints`` (17), ``stem_channels``, ``num_blocks``, ``stage_modules``."""
    try:
        joints, width = sd["final_layer.weight"].shape[:2]
        stem = sd["conv1.weight"].shape[0]
    except KeyError as e:
        raise OfficialCheckpointError(f"{path}: no HRNet pose tensor {e}") from None
    if any(".cam." in k for k in sd):
        raise OfficialCheckpointError(
            f"{path}: holds CAM weights; evaluate the .ckpt written by python -m pose2d fit"
        )
    blocks = len({k.split(".")[1] for k in sd if k.startswith("layer1.")})
    modules = [len({k.split(".")[1] for k in sd if k.startswith(f"stage{s}.")}) for s in (2, 3, 4)]
    return dict(
        width=int(width),
        num_joints=int(joints),
        stem_channels=int(stem),
        num_blocks=blocks,
        stage_modules=modules,
    )


def input_size_from_name(path: str | Path) -> tuple[int, int] | None:
    """``(w, h)`` from the official name ``..._<H>x<W>...`` (``pose_hrnet_w32_256x192.pth`` →
    ``(192, 256)``), or None when the name does not say."""
    m = re.search(r"(\d{2,4})x(\d{2,4})", Path(path).name)
    if not m:
        return None
    h, w = int(m.group(1)), int(m.group(2))
    return (w, h) if h % 32 == 0 and w % 32 == 0 else None


def official_eval_args(args: list[str], path: str) -> list[str]:
    """Rewrite a ``pose2d validate|test|predict`` command line whose ``--ckpt_path`` is the plain
    state dict ``path``: drop ``--ckpt_path``, initialise from the file (strict), build the
    architecture it holds without CAM, and apply the official test settings. Flags the user gave
    on the command line win."""
    out = drop_flag(args, "--ckpt_path")
    arch = hrnet_architecture(read_state_dict(path), path)
    flags = {
        "--model.pretrained": str(path),
        "--model.cam_placement": "none",
        **{f"--model.{k}": str(v).replace(" ", "") for k, v in arch.items()},
        **OFFICIAL_TEST_FLAGS,
        "--data.val_boxes": DEFAULT_DETECTIONS,
    }
    size = input_size_from_name(path)
    if size is not None:
        flags["--data.input_size"] = f"[{size[0]},{size[1]}]"
        if size[1] >= 384:  # the official 384x288 configs train with sigma 3 (val loss only)
            flags["--data.sigma"] = "3.0"
    elif not flag_given(args, "--data.input_size"):
        print(f"{Path(path).name}: no <H>x<W> in the file name; using the config's input size "
              "(pass --data.input_size=[W,H] if it differs)")  # fmt: skip
    extra = [f"{k}={v}" for k, v in flags.items() if not flag_given(args, k)]
    print(f"official HRNet state dict {path}: " + " ".join(extra))
    return out + extra
