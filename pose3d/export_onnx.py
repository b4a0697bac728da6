"""Export the lifter to ONNX at a fixed window length T (dynamic batch), opset 17, and check it
against onnxruntime.

    python -m pose3d.export_onnx --ckpt runs/.../best.ckpt --out lifter.onnx [--check]

Input ``pose_2d`` ``(batch, T, 17, 2)`` normalised screen coordinates; output ``pose_3d``
``(batch, T, 17, 3)`` (sequence head) or ``(batch, 1, 17, 3)`` (centre head), metres.
"""

from __future__ import annotations

import argparse
import sys

import torch

from callbacks.checkpoint_check import LIFTER_KINDS, require_checkpoint
from callbacks.user_error import exit_code
from pose2d.export_onnx import OPSET, export_onnx, onnx_parity


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--ckpt", required=True, help="lifter checkpoint (Lightning .ckpt)")
    p.add_argument("--out", required=True, help="output .onnx path")
    p.add_argument("--opset", type=int, default=OPSET)
    p.add_argument("--check", action="store_true", help="compare with onnxruntime on 3 windows")
    a = p.parse_args(argv)
    from pose3d.checkpoint import load_lifter

    require_checkpoint(a.ckpt, LIFTER_KINDS, "--ckpt")
    model = load_lifter(a.ckpt)
    t, j = model.frames, model.num_joints
    path = export_onnx(model, torch.randn(2, t, j, 2), a.out, "pose_2d", "pose_3d", a.opset)
    print(f"wrote {path} (opset {a.opset}, input pose_2d (batch, {t}, {j}, 2))")
    if a.check:
        err = onnx_parity(model, path, torch.randn(3, t, j, 2) * 0.5)
        print(f"max |torch - onnxruntime| on pose_3d: {err:.2e} m")


if __name__ == "__main__":
    sys.exit(exit_code(main))
