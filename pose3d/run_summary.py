"""What an inference run used, printed before it starts (``make infer``): checkpoints, box
source, people, frame rates; and a warning when a checkpoint was trained on synthetic data
(the ``make demo`` models: stick figures, not people)."""

from __future__ import annotations

from pathlib import Path

import torch


def trained_on_synthetic(path: str | Path) -> bool:
    """Whether a Lightning checkpoint says its training data was synthetic: the 2D data module's
    ``synthetic`` hyper-parameter, or the lifter's ``training_data["synthetic"]``."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - the checkpoint check reports unreadable files
        return False
    if not isinstance(ckpt, dict):
        return False
    data_hp = ckpt.get("datamodule_hyper_parameters") or {}
    info = ckpt.get("training_data") or {}
    return bool(data_hp.get("synthetic") or info.get("synthetic"))


def run_summary(
    detector: str, lifter: str, boxes: str, people: str, video_fps: float,
    fps_source: str, lifter_fps: float | None, resample: bool, frames_t: int,
) -> list[str]:  # fmt: skip
    """Lines describing the run, then one warning line per synthetic checkpoint."""
    if not resample:
        rate = "off (--no-resample)"
    elif lifter_fps is None:
        rate = "off (the lifter's training rate is unknown; --lifter-fps sets it)"
    elif abs(video_fps / lifter_fps - 1) < 0.01:
        rate = "not needed"
    else:
        rate = f"{video_fps:g} → {lifter_fps:g} fps for lifting, back to {video_fps:g}"
    lines = [
        f"detector: {detector}",
        f"lifter:   {lifter} (T = {frames_t}, trained at "
        f"{'unknown' if lifter_fps is None else f'{lifter_fps:g}'} fps)",
        f"boxes:    {boxes}",
        f"people:   {people}",
        f"fps:      input {video_fps:g} ({fps_source}); resampling {rate}",
    ]
    for role, path in (("detector", detector), ("lifter", lifter)):
        if trained_on_synthetic(path):
            lines.append(
                f"warning: the {role} {path} was trained on synthetic data (make demo): expect "
                "rough poses on real footage; train on COCO / Human3.6M or convert official "
                "weights (docs/system.md)"
            )
    return lines
