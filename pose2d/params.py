"""Parameter table of HRNet-W32/W48 for every CAM placement (``python -m pose2d.params``).

Counts come from building each model (no forward pass). The paper's Table I/VII figures
(29.5M / 66.2M, 28.8M-30.0M) cannot be reproduced by 1×1-conv CAMs at these placements; this
prints what the architecture described in the paper actually costs.
"""

from __future__ import annotations

import argparse

from pose2d.hrnet import CAM_PRESETS, PoseHighResolutionNet

PAPER_TABLE_VII = {"none": "28.5M", "sub1": "28.8M", "sub21": "29.3M", "sub321": "30.0M",
                   "stage1": "28.9M", "stage21": "29.4M", "stage321": "30.0M"}  # fmt: skip
PAPER_TABLE_I = {32: "29.5M", 48: "66.2M"}


def count(width: int, placement: str) -> tuple[int, int]:
    """(total parameters, number of CAM modules)."""
    m = PoseHighResolutionNet(width=width, cam_placement=placement)
    n_cam = sum(1 for k in m.state_dict() if k.endswith(".cam.fc1.weight"))
    return sum(p.numel() for p in m.parameters()), n_cam


def table(widths: tuple[int, ...] = (32, 48)) -> str:
    """Markdown table: preset, CAM modules, params and the delta over the baseline per width."""
    head = (
        "| cam_placement | CAMs | "
        + " | ".join(f"W{w} params | W{w} Δ" for w in widths)
        + " | paper (W32) |"
    )
    lines = [head, "|" + "---|" * (2 + 2 * len(widths) + 1)]
    base = {w: count(w, "none")[0] for w in widths}
    for preset in CAM_PRESETS:
        cells = []
        n_cam = 0
        for w in widths:
            total, n_cam = count(w, preset)
            cells += [f"{total:,}", f"+{total - base[w]:,}"]
        paper = PAPER_TABLE_VII.get(preset, PAPER_TABLE_VII["sub1"] + " / T.I " + PAPER_TABLE_I[32])
        lines.append(f"| {preset} | {n_cam} | " + " | ".join(cells) + f" | {paper} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m pose2d.params", description=__doc__)
    ap.add_argument("--widths", type=int, nargs="+", default=[32, 48])
    print(table(tuple(ap.parse_args(argv).widths)))


if __name__ == "__main__":
    main()
