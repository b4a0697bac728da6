"""The shipped 2D configs carry the official HRNet COCO recipe and the paper's Table I inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "pose2d"
PAPER = ["w32_256x192", "w32_cam_256x192", "w48_256x192", "w48_cam_256x192"]
HIGH_RES = ["w48_384x288", "w48_cam_384x288"]


@pytest.mark.parametrize("name", PAPER + HIGH_RES)
def test_official_recipe(name):
    cfg = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    m, d, t = cfg["model"], cfg["data"], cfg["trainer"]
    assert (m["lr"], m["weight_decay"], m["milestones"], m["gamma"]) == (1e-3, 0.0, [170, 200], 0.1)
    assert (t["max_epochs"], d["batch_size"]) == (210, 32)
    assert m["width"] == int(name[1:3]) and m["flip_test"] and m["decode_method"] == "standard"
    assert m["cam_placement"] == ("paper" if "_cam_" in name else "none")
    # official: sigma 2 at 256x192, 3 at 384x288; input_size is [w, h]
    h, w = (int(v) for v in name.rsplit("_", 1)[1].split("x"))
    assert d["input_size"] == [w, h] and d["sigma"] == (2.0 if h == 256 else 3.0)


def test_make_backbone_w48_uses_the_paper_input():
    """Table I reports both W32 and W48 at 256×192; ``make train-2d BACKBONE=w48`` follows it."""
    makefile = (CONFIGS.parents[1] / "Makefile").read_text()
    line = next(ln for ln in makefile.splitlines() if ln.startswith("POSE2D_CFG"))
    assert "w48_cam_256x192" in line and "384x288" not in line
