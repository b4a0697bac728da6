"""ONNX export with an onnxruntime parity check (the detector CLI; the generic helpers are
shared with ``pose3d.export_onnx``).

Opset 17, the TorchScript-based exporter (``dynamo=False``: no onnxscript dependency), a dynamic
batch axis. onnx/onnxruntime are optional (``pip install -e ".[deploy]"``).

    python -m pose2d.export_onnx --ckpt runs/.../best.ckpt --out detector.onnx [--check]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from callbacks.checkpoint_check import DETECTOR_KINDS, require_checkpoint
from callbacks.user_error import exit_code
from pose2d.checkpoint import add_input_size_argument, detector_input_size, load_detector

OPSET = 17


def export_onnx(
    model: nn.Module,
    example: torch.Tensor,
    path: str | Path,
    input_name: str = "input",
    output_name: str = "output",
    opset: int = OPSET,
    dynamic_batch: bool = True,
) -> Path:
    """Export ``model`` (eval mode, CPU, fp32) traced on ``example``; axis 0 dynamic if asked."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu().float()
    axes = {input_name: {0: "batch"}, output_name: {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
        torch.onnx.export(
            model,
            (example.cpu().float(),),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes=axes,
            do_constant_folding=True,
        )
    return path


def onnx_parity(model: nn.Module, path: str | Path, inputs: torch.Tensor) -> float:
    """Max |PyTorch − onnxruntime| over ``inputs`` (needs onnxruntime)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    got = sess.run(None, {name: inputs.cpu().float().numpy()})[0]
    with torch.no_grad():
        want = model.eval().cpu().float()(inputs.cpu().float()).numpy()
    if got.shape != want.shape:
        raise AssertionError(f"ONNX output shape {got.shape} != PyTorch {want.shape}")
    return float(np.abs(got - want).max())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--ckpt", required=True, help="detector checkpoint (Lightning .ckpt)")
    p.add_argument("--out", required=True, help="output .onnx path")
    add_input_size_argument(p)
    p.add_argument("--opset", type=int, default=OPSET)
    p.add_argument("--check", action="store_true", help="compare with onnxruntime on 2 inputs")
    a = p.parse_args(argv)
    require_checkpoint(a.ckpt, DETECTOR_KINDS, "--ckpt")
    model = load_detector(a.ckpt)
    w, h = a.input_size or detector_input_size(a.ckpt)
    example = torch.randn(2, 3, h, w)
    path = export_onnx(model, example, a.out, "image", "heatmaps", a.opset)
    print(f"wrote {path} (opset {a.opset}, input image (batch, 3, {h}, {w}))")
    if a.check:
        err = onnx_parity(model, path, torch.randn(3, 3, h, w))
        print(f"max |torch - onnxruntime| on heatmaps: {err:.2e}")


if __name__ == "__main__":
    sys.exit(exit_code(main))
