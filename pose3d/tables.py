"""Markdown tables in the paper's layouts: Table II (H36M per action) and Table IV (3DHP).

Both take the dicts returned by ``pose3d.metrics.H36MMetrics.compute()`` /
``MPI3DHPMetrics.compute()`` (values in mm, PCK/AUC in %).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from datamodules.skeleton import H36M_ACTIONS

# Column headers of Table II, in the order of ``H36M_ACTIONS``.
H36M_ACTION_ABBREV = dict(
    zip(
        H36M_ACTIONS,
        ("Dir.", "Disc.", "Eat", "Greet", "Phone", "Photo", "Pose", "Purch.", "Sit", "SitD.",
         "Smoke", "Wait", "WalkD.", "Walk", "WalkT."),
        strict=True,
    )
)  # fmt: skip
# Row label → (metric key, default number of decimals).
H36M_ROWS = {
    "P1": ("mpjpe", 1),
    "P2": ("p_mpjpe", 1),
    "MPJVE": ("mpjve", 2),
    "Frames": ("frames", 0),
}  # fmt: skip - frames scored (Avg. column: all of them)


def _fmt(v: float | None, digits: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{float(v):.{digits}f}"


def format_h36m_table(
    per_action: Mapping[str, Mapping[str, float]],
    average: Mapping[str, float] | None = None,
    rows: tuple[str, ...] = ("P1", "P2", "MPJVE", "Frames"),
    label: str = "Metric",
) -> str:
    """Table II layout: one column per action (paper order) plus ``Avg``; rows P1, P2, MPJVE
    and Frames (how many frames each number is computed on; ``Avg``: the total).

    ``per_action``: ``{action name: {"mpjpe", "p_mpjpe", "mpjve"}}`` in mm (the ``per_action``
    entry of ``H36MMetrics.compute()``; the full result dict is accepted too). ``average``:
    values for the ``Avg`` column (default: the action-wise ``mpjpe``/``p_mpjpe``/``mpjve`` of
    the full result if given, else the unweighted mean of the actions present). Missing
    actions print as ``–``. Rows whose metric no action has are left out.
    """
    if "per_action" in per_action:  # the whole compute() result
        average = per_action if average is None else average
        per_action = per_action["per_action"]  # type: ignore[assignment]
    unknown = set(per_action) - set(H36M_ACTIONS)
    if unknown:
        raise ValueError(f"unknown action names {sorted(unknown)}; expected {H36M_ACTIONS}")
    header = [f"{label}", *H36M_ACTION_ABBREV.values(), "Avg"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        key, digits = H36M_ROWS[row]
        vals = [per_action.get(a, {}).get(key) for a in H36M_ACTIONS]
        present = [float(v) for v in vals if v is not None and not math.isnan(float(v))]
        if not present:
            continue
        if average is not None:
            avg = average.get(key)
        else:
            avg = sum(present) if key == "frames" else sum(present) / len(present)
        cells = [_fmt(None if v is None else float(v), digits) for v in vals]
        cells.append(_fmt(None if avg is None else float(avg), digits))
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_3dhp_row(
    result: Mapping[str, float],
    method: str = "Ours",
    frames: int | None = None,
    header: bool = True,
) -> str:
    """Table IV layout: ``| Method | PCK ↑ | AUC ↑ | MPJPE ↓ |`` (pooled over all frames).

    ``result``: ``MPI3DHPMetrics.compute()`` (keys ``pck``, ``auc``, ``mpjpe``); ``frames``
    appends ``(f=…)`` to the method name as the paper does.
    """
    name = method if frames is None else f"{method} (f={frames})"
    row = f"| {name} | {_fmt(float(result['pck']), 1)} | {_fmt(float(result['auc']), 1)} | " \
          f"{_fmt(float(result['mpjpe']), 1)} |"  # fmt: skip
    if not header:
        return row
    return "| Method | PCK ↑ | AUC ↑ | MPJPE ↓ |\n|---|---|---|---|\n" + row
