"""3D entry points: the CLI end to end (slow), the report tables, params table and bench."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pose3d.bench import bench
from pose3d.params import parameter_table
from pose3d.report import tables_from_metrics

REPO = Path(__file__).resolve().parents[1]


def test_report_h36m_table_from_flat_metrics() -> None:
    m = {"test/mpjpe": 50.0, "test/p_mpjpe": 40.0, "test/mpjve": 2.0,
         "test/mpjpe_framewise": 48.0, "test/mpjpe/Walking": 30.25,
         "test/p_mpjpe/Walking": 20.0, "test/mpjve/Walking": 1.5}  # fmt: skip
    out = tables_from_metrics(m)
    p1 = next(line for line in out.splitlines() if line.startswith("| P1"))
    cells = [c.strip() for c in p1.strip("|").split("|")]
    assert cells[14] == "30.2" or cells[14] == "30.3"  # Walking column (14th action)
    assert cells[-1] == "50.0"  # action-wise Avg.
    assert "Frame-wise MPJPE: 48.0" in out


def test_report_3dhp_row() -> None:
    out = tables_from_metrics({"test/pck": 90.0, "test/auc": 55.5, "test/mpjpe": 70.04})
    assert out.splitlines()[-1] == "| Ours | 90.0 | 55.5 | 70.0 |"


def test_params_table_lists_poseformer_counts() -> None:
    table = parameter_table((9, 81))
    assert "| PoseFormer (no SAM/TAM, centre head) | 9.564M | 9.603M |" in table


def test_bench_runs_on_cpu() -> None:
    torch.set_num_threads(1)  # full-size model; avoid oversubscription on shared CPUs
    r = bench("poseformer", batch=2, frames=1, precision="32", steps=1, warmup=0,
              device=torch.device("cpu"))  # fmt: skip
    assert (
        r["seq_per_s"] > 0 and r["params"] == 9_559_285
    )  # T=1: the formula of test_poseformer_parameter_count


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_cli_fit_then_test_on_synthetic(tmp_path) -> None:
    env = dict(os.environ, WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    common = ["--config", "configs/pose3d/synthetic.yaml",
              f"--data.init_args.root={tmp_path / 'syn'}", "--data.init_args.synthetic_frames=40",
              f"--run.dir={tmp_path / 'run'}"]  # fmt: skip
    fit = [sys.executable, "-m", "pose3d", "fit", *common, "--trainer.max_epochs=1",
           "--trainer.limit_train_batches=3", "--trainer.limit_val_batches=2"]  # fmt: skip
    subprocess.run(fit, cwd=REPO, env=env, check=True, timeout=500)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    test = [sys.executable, "-m", "pose3d", "test", *common, f"--ckpt_path={ckpt}"]
    subprocess.run(test, cwd=REPO, env=env, check=True, timeout=500)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]
    assert 0 < metrics["test/mpjpe"] < 2000
    report = subprocess.run([sys.executable, "-m", "pose3d.report", str(tmp_path / "run" /
                             "metrics.json")], cwd=REPO, env=env, check=True,
                            capture_output=True, text=True).stdout  # fmt: skip
    assert "| P1 |" in report
    # a --model flag on the command line wins over the checkpoint's hyper-parameters (Lightning
    # alone would merge the checkpoint's flip_test / eval_root over it, silently)
    other = tmp_path / "test_flags"
    subprocess.run([*test, "--model.flip_test=false", "--model.eval_root=zero",
                    f"--run.dir={other}"], cwd=REPO, env=env, check=True, timeout=500)  # fmt: skip
    used = (other / "config.yaml").read_text()
    assert "flip_test: false" in used and "eval_root: zero" in used
    flagged = json.loads((other / "metrics.json").read_text())["test"]
    assert flagged["test/mpjpe"] != pytest.approx(metrics["test/mpjpe"], abs=1e-3)
