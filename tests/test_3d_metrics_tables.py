"""Table II / Table IV Markdown formatting."""

from __future__ import annotations

import pytest

from datamodules.skeleton import H36M_ACTIONS
from pose3d.tables import format_3dhp_row, format_h36m_table


def test_h36m_table_layout_and_average() -> None:
    per_action = {a: {"mpjpe": 40.0 + i, "p_mpjpe": 30.0 + i, "mpjve": 2.0 + i / 100}
                  for i, a in enumerate(H36M_ACTIONS)}  # fmt: skip
    lines = format_h36m_table(per_action).splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[1:] == ["Dir.", "Disc.", "Eat", "Greet", "Phone", "Photo", "Pose", "Purch.",
                          "Sit", "SitD.", "Smoke", "Wait", "WalkD.", "Walk", "WalkT.",
                          "Avg"]  # fmt: skip
    p1 = [c.strip() for c in lines[2].strip("|").split("|")]
    assert p1[0] == "P1" and p1[1] == "40.0" and p1[15] == "54.0"
    assert p1[16] == "47.0"  # unweighted mean of 40..54
    mpjve = [c.strip() for c in lines[4].strip("|").split("|")]
    assert mpjve[0] == "MPJVE" and mpjve[1] == "2.00" and mpjve[16] == "2.07"


def test_h36m_table_from_compute_result_with_missing_actions() -> None:
    result = {
        "mpjpe": 43.21, "p_mpjpe": 33.0, "mpjve": float("nan"),
        "per_action": {"Walking": {"mpjpe": 41.04, "p_mpjpe": 30.2, "mpjve": float("nan")},
                       "Directions": {"mpjpe": 45.0, "p_mpjpe": 34.1, "mpjve": float("nan")}},
    }  # fmt: skip
    text = format_h36m_table(result)
    lines = text.splitlines()
    assert len(lines) == 4  # no MPJVE row: no action has one
    p1 = [c.strip() for c in lines[2].strip("|").split("|")]
    assert p1[1] == "45.0" and p1[2] == "–" and p1[14] == "41.0" and p1[16] == "43.2"
    with pytest.raises(ValueError, match="unknown action"):
        format_h36m_table({"Dancing": {"mpjpe": 1.0}})


def test_3dhp_row() -> None:
    text = format_3dhp_row({"pck": 89.12, "auc": 57.46, "mpjpe": 76.33}, frames=9)
    assert text.splitlines()[0] == "| Method | PCK ↑ | AUC ↑ | MPJPE ↓ |"
    assert text.splitlines()[-1] == "| Ours (f=9) | 89.1 | 57.5 | 76.3 |"
    assert format_3dhp_row({"pck": 1, "auc": 2, "mpjpe": 3}, "X", header=False) == (
        "| X | 1.0 | 2.0 | 3.0 |"
    )


def test_every_mpjpe_comes_with_its_frame_count() -> None:
    from pose3d.report import tables_from_metrics

    m = {"test/mpjpe": 50.0, "test/p_mpjpe": 40.0, "test/frames": 1200.0,
         "test/mpjpe/Walking": 30.0, "test/frames/Walking": 700.0,
         "test/mpjpe/Eating": 70.0, "test/frames/Eating": 500.0}  # fmt: skip
    frames = next(ln for ln in tables_from_metrics(m).splitlines() if ln.startswith("| Frames"))
    cells = [c.strip() for c in frames.strip("|").split("|")]
    assert cells[3] == "500" and cells[14] == "700" and cells[1] == "–" and cells[-1] == "1200"
    per_action = {"Walking": {"mpjpe": 1.0, "frames": 3}, "Eating": {"mpjpe": 2.0, "frames": 4}}
    assert format_h36m_table(per_action).splitlines()[-1].endswith("| 7 |")  # Avg. = total
    out = tables_from_metrics({"test/pck": 90.0, "test/auc": 55.5, "test/mpjpe": 70.0,
                               "test/frames": 2929.0})  # fmt: skip
    assert out.splitlines()[-1] == "Scored frames: 2929"
