"""Print one row in the columns of the paper's Table I from a run's ``metrics.json``.

``python -m pose2d.table runs/pose2d/<run>/metrics.json --ckpt best.ckpt --boxes det``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

COLUMNS = ("AP", "AR", "AP50", "AP75", "APl", "APm")  # Table I order: AP AR AP50 AP75 APL APM


def table_row(metrics: dict, params: int | None, name: str, input_size: str, boxes: str) -> str:
    """Markdown header + row; metric values in percent with one decimal."""
    vals = []
    for c in COLUMNS:
        v = metrics.get(f"val/{c}", metrics.get(f"test/{c}"))
        vals.append("-" if v is None else f"{100 * float(v):.1f}")
    p = "-" if params is None else f"{params / 1e6:.2f}M"
    head = "| model | boxes | #Params | input | AP | AR | AP50 | AP75 | APL | APM |"
    sep = "|---" * 10 + "|"
    lines = [head, sep, f"| {name} | {boxes} | {p} | {input_size} | " + " | ".join(vals) + " |"]
    stage = "val" if any(k.startswith("val/") for k in metrics) else "test"
    images = metrics.get(f"{stage}/skipped_images") or 0
    if images:  # an evaluation that could not read every image says so under its row
        persons = int(metrics.get(f"{stage}/skipped_persons") or 0)
        lines.append(
            f"PARTIAL: {int(images)} unreadable images skipped ({persons} persons not scored)"
        )
    return "\n".join(lines)


def describe_checkpoint(path: str | Path) -> tuple[str, str, int]:
    """(model name, input size, parameter count) from a HeatmapModule checkpoint or an
    official plain state dict (size from its file name)."""
    from pose2d.official import (
        hrnet_architecture,
        input_size_from_name,
        is_plain_hrnet,
        read_state_dict,
    )

    buffers = ("running_mean", "running_var", "num_batches_tracked")
    if is_plain_hrnet(path):
        sd = read_state_dict(path)
        size = input_size_from_name(path)
        params = sum(v.numel() for k, v in sd.items() if not k.endswith(buffers))
        name = f"HRNet-W{hrnet_architecture(sd, path)['width']} (official)"
        return name, f"{size[1]}×{size[0]}" if size else "-", params
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    hp = ckpt.get("hyper_parameters", {})
    params = sum(
        v.numel()
        for k, v in ckpt["state_dict"].items()
        if k.startswith("model.") and not k.endswith(buffers)
    )
    cam = hp.get("cam_placement", "none")
    name = f"HRNet-W{hp.get('width', '?')}" + ("" if cam == "none" else f"+CAM({cam})")
    size = hp.get("input_size") or ckpt.get("datamodule_hyper_parameters", {}).get("input_size")
    size_s = f"{size[1]}×{size[0]}" if size else "-"
    return name, size_s, params


def metrics_of(metrics_json: str | Path) -> dict:
    """The ``metrics.json`` content (``{}`` when unreadable)."""
    try:
        return json.loads(Path(metrics_json).read_text())
    except (OSError, ValueError):
        return {}


def run_box_source(metrics_json: str | Path) -> str | None:
    """``"gt"`` or the detection file name the run evaluated on, read from the ``config.yaml``
    the CLI saved next to ``metrics.json`` (``None`` when there is none)."""
    import yaml

    cfg_path = Path(metrics_json).with_name("config.yaml")
    if not cfg_path.is_file():
        return None
    data = (yaml.safe_load(cfg_path.read_text()) or {}).get("data") or {}
    data = data.get("init_args", data)
    boxes = data.get("val_boxes")
    if "validate" not in metrics_of(metrics_json):  # a test run: test_boxes when set
        boxes = data.get("test_boxes") or boxes
    if not boxes:
        return None
    return "gt" if boxes == "gt" else f"det ({Path(boxes).name})"


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(prog="python -m pose2d.table", description=__doc__)
    ap.add_argument("metrics_json")
    ap.add_argument("--ckpt", required=True)
    ap.add_argument(
        "--boxes", default=None, help="box label (default: read from the run's config.yaml)"
    )
    args = ap.parse_args(argv)
    path = Path(args.metrics_json)
    if not path.is_file():
        raise SystemExit(f"{path} not found: did the validate run finish?")
    data = json.loads(path.read_text())
    metrics = data.get("validate") or data.get("test") or {}
    name, size, params = describe_checkpoint(args.ckpt)
    used = run_box_source(path)
    if used and args.boxes and used.split(" ")[0] != args.boxes:
        raise SystemExit(f"--boxes {args.boxes} but the run in {path.parent} used {used}")
    row = table_row(metrics, params, name, size, used or args.boxes or "?")
    print(row)
    return row


if __name__ == "__main__":
    main()
