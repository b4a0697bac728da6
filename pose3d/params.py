"""Parameter counts of the PoseFormer baseline and of our full model at T = 9, 27, 81, 243.

python -m pose3d.params
"""

from __future__ import annotations

from pose3d.lifter import PoseLifter, count_parameters

CONFIGS = {
    "PoseFormer (no SAM/TAM, centre head)": dict(use_sam=False, use_tam=False, head="center"),
    "+ SAM": dict(use_sam=True, use_tam=False, head="center"),
    "+ TAM": dict(use_sam=False, use_tam=True, head="center"),
    "Ours (SAM + TAM, sequence head)": dict(),
}


def parameter_table(frames: tuple[int, ...] = (9, 27, 81, 243)) -> str:
    """Markdown table of parameter counts in millions (3 decimals)."""
    lines = ["| Model | " + " | ".join(f"T={t}" for t in frames) + " |",
             "|---|" + "---|" * len(frames)]  # fmt: skip
    for name, kw in CONFIGS.items():
        counts = [count_parameters(PoseLifter(t, **kw)) / 1e6 for t in frames]
        lines.append(f"| {name} | " + " | ".join(f"{c:.3f}M" for c in counts) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(parameter_table())
