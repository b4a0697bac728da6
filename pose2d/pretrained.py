"""Load official HRNet weights into :class:`PoseHighResolutionNet`.

Two kinds of file are recognised:

* an official COCO **pose** checkpoint (``pose_hrnet_w32_256x192.pth``…, also wrapped in
  ``state_dict``/``module.``, mmpose's ``backbone.``/``head.`` names, or our Lightning ``model.``):
  loaded strictly; with CAM enabled only the CAM keys may be missing;
* an **ImageNet** classification checkpoint (``hrnet_w32-36af842e.pth``,
  ``hrnet_w48-8ef0771d.pth``): as in the official ``init_weights``, only keys whose first
  component is ``conv1``…``stage4`` are kept (1,752 of the 1,754 pose keys); the classification
  extras (``stage4.2.fuse_layers.{1,2,3}``, ``incre_modules``, ``downsamp_modules``, the
  1024→2048 ``final_layer`` and ``classifier``) are dropped, and the pose ``final_layer`` keeps its
  initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from pytorch_lightning.utilities import rank_zero_info
from torch import nn

PRETRAINED_LAYERS = (
    "conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "stage2", "transition2", "stage3",
    "transition3", "stage4",
)  # fmt: skip
_IMAGENET_ONLY = ("incre_modules", "downsamp_modules", "classifier")


@dataclass
class LoadReport:
    kind: str  # "pose" | "imagenet"
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # model keys left at their init
    dropped: list[str] = field(default_factory=list)  # checkpoint keys not used


def _unwrap(obj: object, path: str | Path) -> dict[str, torch.Tensor]:
    """Find the tensor dict inside common wrappers and strip ``module.``-style prefixes."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: not a state dict of tensors (nor one wrapped in 'state_dict')")
    sd: dict[str, torch.Tensor] = {}
    for k, v in obj.items():
        for prefix in ("module.", "model."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
        if k.startswith("backbone."):  # mmpose
            k = k[len("backbone.") :]
        for head in ("head.final_layer.", "keypoint_head.final_layer."):
            if k.startswith(head):
                k = "final_layer." + k[len(head) :]
        sd[k] = v
    return sd


def load_pretrained(model: nn.Module, path: str | Path) -> LoadReport:
    """Load ``path`` into ``model`` (see the module docstring); returns what was (not) loaded."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained weights not found: {path} (expected an official HRNet .pth, e.g. "
            "models/pytorch/imagenet/hrnet_w32-36af842e.pth or pose_hrnet_w32_256x192.pth)"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file or pickled non-tensor objects
        raise ValueError(f"{path}: cannot be read as a weights-only torch checkpoint: {e}") from e
    sd = _unwrap(obj, path)
    own = model.state_dict()
    is_imagenet = any(k.split(".")[0] in _IMAGENET_ONLY for k in sd)
    report = LoadReport(kind="imagenet" if is_imagenet else "pose")
    if is_imagenet:
        keep = {k: v for k, v in sd.items() if k.split(".")[0] in PRETRAINED_LAYERS and k in own}
    else:
        keep = {k: v for k, v in sd.items() if k in own}
    report.dropped = sorted(set(sd) - set(keep))
    bad = [f"{k}: {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in keep.items()
           if v.shape != own[k].shape]  # fmt: skip
    if bad:
        raise ValueError(
            f"{path}: {len(bad)} shape mismatches (wrong width?): " + "; ".join(bad[:5])
        )
    report.missing = sorted(set(own) - set(keep))
    report.loaded = sorted(keep)
    cam = {k for k in own if ".cam." in k}
    if not is_imagenet and (report.dropped or set(report.missing) - cam):
        raise ValueError(
            f"{path}: pose checkpoint does not match the model: "
            f"missing (non-CAM) {sorted(set(report.missing) - cam)[:10]}, "
            f"unexpected {report.dropped[:10]}"
        )
    model.load_state_dict(keep, strict=False)
    # Through Lightning's rank-zero logger: it has a console handler, this package's loggers do not.
    rank_zero_info(
        f"loaded {report.kind} weights from {path}: {len(keep)} tensors; left at init "
        f"({len(report.missing)}): {_summary(report.missing)}; dropped from file "
        f"({len(report.dropped)}): {_summary(report.dropped)}"
    )
    return report


def _summary(keys: list[str], n: int = 6) -> str:
    if not keys:
        return "none"
    return ", ".join(keys[:n]) + (f", … (+{len(keys) - n})" if len(keys) > n else "")
