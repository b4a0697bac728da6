"""Turn an official PoseFormer checkpoint into a lifter checkpoint of this project.

    python -m pose3d.convert poseformer detected81f.bin --frames 81 --out detected81f.ckpt

The official file (``run_poseformer.py``) is a dict with ``epoch``, ``lr``, ``random_state`` (a
numpy RNG), ``optimizer`` and ``model_pos``, the state dict of an ``nn.DataParallel`` model
(keys prefixed ``module.``). It is read with ``torch.load(weights_only=True)`` plus exactly the
numpy globals of that RNG state (``callbacks.checkpoint_check``). The weights are renamed
(:data:`POSEFORMER_RENAMES`), loaded strictly into :class:`PoseLifter` in the PoseFormer
configuration (no SAM/TAM, centre head), and written, atomically, as a Lightning-format
checkpoint that ``python -m pose3d test --ckpt_path=`` (``make eval-3d``) and
``python -m pose3d.infer --lifter`` read, with that configuration recorded in its
``hyper_parameters``. The window length T is read from ``Temporal_pos_embed`` and the
``weighted_mean`` convolution and must equal ``--frames``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch

from callbacks.atomic_io import atomic_write
from callbacks.checkpoint_check import classify_checkpoint, load_poseformer_file
from callbacks.user_error import UserError

# Official prefix -> ours (first match on the start of the key, after ``module.``).
POSEFORMER_RENAMES: tuple[tuple[str, str], ...] = (
    ("Spatial_patch_to_embedding.", "joint_embed."),
    ("Spatial_pos_embed", "spatial_pos"),
    ("Temporal_pos_embed", "temporal_pos"),
    ("Spatial_blocks.", "spatial_blocks."),
    ("blocks.", "temporal_blocks."),
    ("Spatial_norm.", "spatial_norm."),
    ("Temporal_norm.", "temporal_norm."),
    ("weighted_mean.", "weighted_mean."),
    ("head.0.", "head_norm."),
    ("head.1.", "head_linear."),
)

# The PoseFormer configuration (model_poseformer.py / run_poseformer.py; the same values as
# configs/pose3d/poseformer.yaml): recorded in the converted checkpoint.
POSEFORMER_HPARAMS = dict(
    use_sam=False, use_tam=False, head="center", dropout=0.0, drop_path=0.1, spatial_heads=8,
    temporal_heads=8, lambda_s=1.0, lambda_t=0.0, optimizer="adamw", lr=1e-4, weight_decay=0.1,
    lr_decay=0.99, lr_decay_every=1, flip_test=True,
)  # fmt: skip


class ConversionError(UserError):
    """The file cannot be converted (one line, exit status 2)."""


def rename_poseformer_key(key: str) -> str | None:
    """Official ``model_pos`` key → our :class:`PoseLifter` key (None: not a PoseFormer key)."""
    key = key.removeprefix("module.")
    for old, new in POSEFORMER_RENAMES:
        if key.startswith(old):
            return new + key[len(old) :]
    return None


def to_poseformer_key(key: str) -> str:
    """Our :class:`PoseLifter` key → the official ``model_pos`` key (``module.`` prefixed);
    the inverse of :func:`rename_poseformer_key`, used to write files in the official layout."""
    for old, new in POSEFORMER_RENAMES:
        if key.startswith(new):
            return "module." + old + key[len(new) :]
    raise KeyError(f"{key}: not a key of the PoseFormer configuration")


def poseformer_architecture(sd: dict[str, torch.Tensor], path: Path) -> dict:
    """PoseLifter arguments read from the tensor shapes of a renamed state dict."""
    try:
        _, joints, dim = sd["spatial_pos"].shape
        frames = int(sd["temporal_pos"].shape[1])
        wm = sd["weighted_mean.weight"].shape  # Conv1d(T -> 1, k=1): (1, T, 1)
        hidden = int(sd["spatial_blocks.0.mlp.fc1.weight"].shape[0])
    except (KeyError, ValueError) as e:
        raise ConversionError(
            f"{path}: model_pos lacks the PoseFormer tensor {e} (is it PoseFormer's model_pos?)"
        ) from None
    if wm[1] != frames:
        raise ConversionError(
            f"{path}: Temporal_pos_embed has T={frames} but weighted_mean {wm[1]} frames"
        )

    def depth(prefix: str) -> int:
        return len({k.split(".")[1] for k in sd if k.startswith(prefix)})

    return dict(
        frames=frames,
        num_joints=int(joints),
        spatial_dim=int(dim),
        spatial_depth=depth("spatial_blocks."),
        temporal_depth=depth("temporal_blocks."),
        mlp_ratio=hidden / int(dim),
    )


def convert_poseformer(path: str | Path, frames: int) -> dict:
    """The official file at ``path`` → a Lightning-format checkpoint dict (plain types and
    tensors only, so it loads with ``weights_only=True``).

    Args:
        path: official PoseFormer checkpoint (``detected81f.bin``, ``gt81f.bin``...).
        frames: the window length T the user expects; must match the file.
    """
    from pose3d.module import LiftingModule

    path = Path(path)
    info = classify_checkpoint(path)
    if info.kind == "lightning_3d":
        raise ConversionError(f"{path} is already a lifter checkpoint; use it as it is")
    if info.kind != "poseformer":
        raise ConversionError(
            f"{path} is {info.description}, not an official PoseFormer checkpoint (a dict with "
            "'model_pos' holding module.Spatial_patch_to_embedding.* ...)"
        )
    obj = load_poseformer_file(path)
    sd = {}
    for key, value in obj["model_pos"].items():
        new = rename_poseformer_key(str(key))
        if new is None:
            raise ConversionError(f"{path}: model_pos key {key!r} is not part of PoseFormer")
        sd[new] = value
    arch = poseformer_architecture(sd, path)
    if arch["frames"] != frames:
        raise ConversionError(
            f"{path} holds a T={arch['frames']} model (Temporal_pos_embed), not --frames "
            f"{frames}; pass --frames {arch['frames']}"
        )
    module = LiftingModule(**{**POSEFORMER_HPARAMS, **arch})
    result = module.model.load_state_dict(sd, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ConversionError(
            f"{path}: model_pos does not match PoseFormer (missing {result.missing_keys[:4]}, "
            f"unexpected {result.unexpected_keys[:4]})"
        )
    return {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": pl.__version__,
        "state_dict": {k: v.detach().clone() for k, v in module.state_dict().items()},
        "hyper_parameters": dict(module.hparams),
        "converted_from": {
            "format": "poseformer",
            "file": path.name,
            "epoch": int(obj.get("epoch", -1)),
            "lr": float(obj.get("lr", float("nan"))),
        },
    }


def write_checkpoint(ckpt: dict, out: str | Path) -> Path:
    """``torch.save`` to ``out`` atomically (temp file in the same folder, then rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(out, lambda f: torch.save(ckpt, f))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pose3d.convert",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="format", required=True)
    pf = sub.add_parser("poseformer", help="official PoseFormer checkpoint (model_pos)")
    pf.add_argument("file", type=Path, help="the official file, e.g. detected81f.bin")
    pf.add_argument("--frames", type=int, required=True, help="window length T of the file")
    pf.add_argument("--out", type=Path, required=True, help="the .ckpt to write")
    pf.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    a = p.parse_args(argv)
    try:
        if a.out.exists() and not a.overwrite:
            raise ConversionError(f"{a.out} exists; choose another --out or pass --overwrite")
        ckpt = convert_poseformer(a.file, a.frames)
        write_checkpoint(ckpt, a.out)
    except UserError as e:
        if os.environ.get("POSE_TRACEBACK"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    hp = ckpt["hyper_parameters"]
    n = sum(v.numel() for k, v in ckpt["state_dict"].items() if k.startswith("model."))
    print(
        f"wrote {a.out}: PoseFormer T={hp['frames']} ({n / 1e6:.3f}M parameters; no SAM/TAM, "
        f"centre head) from {a.file} (epoch {ckpt['converted_from']['epoch']}). Evaluate: "
        f"make eval-3d DATA=h36m FRAMES={hp['frames']} CKPT={a.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
