"""The sweep files and the local grid runner (``python -m callbacks.ablate``).

Fast: grid expansion, command expansion (same ``--key=value`` strings as the W&B agent), table
layout. Slow: every grid point of every sweep file, tiny, on synthetic data (in-process to skip
the per-point import cost), plus one point through the subprocess path.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from callbacks.ablate import (
    expand_command,
    grid_points,
    load_sweep,
    main,
    point_name,
    results_table,
    run_sweep,
)

SWEEPS = Path(__file__).resolve().parents[1] / "configs" / "sweeps"
TABLES = ["table6", "table7", "table8", "table9", "table10"]
GRID_SIZES = {"table6": 8, "table7": 7, "table8": 9, "table9": 4, "table10": 4}


@pytest.mark.parametrize("name", TABLES)
def test_sweep_files_are_runnable_grids(name: str) -> None:
    sweep = load_sweep(SWEEPS / f"{name}.yaml")
    assert len(grid_points(sweep["parameters"])) == GRID_SIZES[name]
    cmd = sweep["command"]
    assert cmd[:4] == ["${env}", "${interpreter}", "-m", "${program}"]
    assert sweep["program"] == ("pose2d" if name == "table7" else "pose3d")
    assert cmd[-1] == "${args}" and "--config" in cmd
    config = Path(__file__).resolve().parents[1] / cmd[cmd.index("--config") + 1]
    if not config.is_file():
        pytest.skip(f"{config} not written yet (the trainer's paper config)")


def test_grid_and_command_expansion() -> None:
    params = {"a.x": {"values": [1, 2]}, "b.y": {"values": [True, False]}, "c": {"value": 9}}
    points = grid_points(params)
    assert points == [
        {"a.x": 1, "b.y": True, "c": 9},
        {"a.x": 1, "b.y": False, "c": 9},
        {"a.x": 2, "b.y": True, "c": 9},
        {"a.x": 2, "b.y": False, "c": 9},
    ]
    cmd = ["${env}", "${interpreter}", "-m", "pose3d", "fit", "--config", "p.yaml", "${args}"]
    out = expand_command(cmd, points[1], extra=["--trainer.max_epochs=1"])
    assert out == [
        sys.executable,
        "-m",
        "pose3d",
        "fit",
        "--config",
        "p.yaml",
        "--trainer.max_epochs=1",
        "--a.x=1",
        "--b.y=false",
        "--c=9",
    ]
    assert point_name(3, points[1], ["a.x", "b.y"]) == "03-x=1-y=false"


def test_results_table_layout() -> None:
    rows = [
        {"point": {"m.lr": 0.001}, "metric": 43.123, "params": 9_860_000, "returncode": 0},
        {"point": {"m.lr": 0.002}, "metric": None, "params": None, "returncode": 1},
    ]
    lines = results_table(rows, ["m.lr"], "val/mpjpe").splitlines()
    assert lines[0] == "| lr | val/mpjpe | #Param (M) |"
    assert lines[2] == "| 0.001 | 43.12 | 9.86 |"
    assert lines[3] == "| 0.002 | failed | - |"


# -- every grid, tiny, on synthetic data ------------------------------------------------------
TINY_3D = [
    "--config",
    "configs/pose3d/synthetic.yaml",
    "--data.synthetic_frames=40",
    "--data.batch_size=32",
    "--data.eval_batch_size=128",
    "--model.spatial_dim=8",
    "--model.spatial_depth=1",
    "--model.temporal_depth=1",
    "--model.spatial_heads=2",
    "--model.temporal_heads=2",
    "--model.sam_groups=2",
]
TINY_2D = [
    "--config",
    "configs/pose2d/synthetic.yaml",
    "--data.input_size=[64,64]",
    "--data.batch_size=4",
    "--data.num_workers=0",
    "--data.synthetic_num_train=8",
    "--data.synthetic_num_val=4",
    "--model.width=8",
    "--model.stem_channels=16",
    "--trainer.check_val_every_n_epoch=1",
]
LIMITS = [
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=1",
    "--trainer.limit_val_batches=1",
    "--trainer.num_sanity_val_steps=0",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
]


def _check(rows: list[dict], table: str, n: int) -> None:
    assert len(rows) == n
    assert all(r["returncode"] == 0 for r in rows), [r["dir"] for r in rows if r["returncode"]]
    assert all(r["metric"] is not None and math.isfinite(r["metric"]) for r in rows)
    assert all(r["params"] > 0 for r in rows)
    assert len(table.strip().splitlines()) == n + 2


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_sweep_grid_runs_tiny(tmp_path: Path) -> None:
    paper = Path("configs/pose3d/paper.yaml")
    if not paper.is_file():
        pytest.skip(f"{paper} not written yet; the 3D sweeps start from it")
    data3d = [f"--data.root={tmp_path / 'h36m'}"]
    data2d = [f"--data.root={tmp_path / 'coco'}"]
    out = tmp_path / "ablate"
    results = {}
    for name in TABLES:
        extra = (TINY_2D + data2d if name == "table7" else TINY_3D + data3d) + LIMITS
        # the synthetic set has the keypoint files gt / synthetic_det, not the HRNet exports
        values = {"data.keypoints": ["gt", "synthetic_det"]} if name == "table6" else None
        rows, table = run_sweep(SWEEPS / f"{name}.yaml", extra, out, values=values, in_process=True)
        _check(rows, table, GRID_SIZES[name])
        assert (out / name / "results.md").is_file()
        results[name] = rows
    # real numbers: more CAM sites -> more parameters; longer windows -> more parameters
    p7 = {r["point"]["model.cam_placement"]: r["params"] for r in results["table7"]}
    assert p7["none"] < p7["sub1"] < p7["sub21"] < p7["sub321"] == p7["stage321"]
    p9 = [r["params"] for r in results["table9"]]
    assert p9 == sorted(p9) and p9[0] < p9[-1]
    # no SAM and no TAM is the smallest lifter
    p6 = {(r["point"]["model.use_sam"], r["point"]["model.use_tam"]): r["params"]
          for r in results["table6"]}  # fmt: skip
    assert p6[(False, False)] < p6[(True, False)] < p6[(True, True)]

    # one point through the production path (a subprocess per point, CLI entry, exit code)
    extra = TINY_3D + data3d + LIMITS
    rc = main(
        [str(SWEEPS / "table10.yaml"), "--out", str(tmp_path / "sub"), "--values",
         "model.lr=1e-3", "--", *extra]
    )  # fmt: skip
    assert rc == 0
    md = (tmp_path / "sub" / "table10" / "results.md").read_text()
    assert "| lr | val/mpjpe | #Param (M) |" not in md  # a single value is not a varied column
    assert len(md.strip().splitlines()) == 2 + 1 + 2
