"""The W&B run summary holds each reported metric's best value (``define_metric`` with
``summary="min"|"max"``), checked on a recording fake run and in a real offline run's file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytorch_lightning.loggers import WandbLogger

from callbacks.wandb_logger import PoseWandbLogger, define_summaries, summary_definitions


class RecordingRun:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def define_metric(self, name: str, summary: str | None = None, **_) -> None:
        self.calls.append((name, summary))


def test_reported_metrics_summarise_their_best_value() -> None:
    run = RecordingRun()
    define_summaries(run)
    got = dict(run.calls)
    # the sweep metrics, the other reported metrics, per-group keys, both stages
    for name, goal in [
        ("val/mpjpe", "min"),
        ("val/p_mpjpe", "min"),
        ("val/mpjve", "min"),
        ("val/mpjpe_framewise", "min"),
        ("val/loss", "min"),
        ("val/pck", "max"),
        ("val/auc", "max"),
        ("val/AP", "max"),
        ("val/AR75", "max"),
        ("test/mpjpe", "min"),
        ("val/mpjpe/*", "min"),
        ("val/pck/*", "max"),
    ]:
        assert got[name] == goal, name
    assert len(run.calls) == len(summary_definitions()) == len(got)


def test_logger_drops_lightnings_anonymous_none() -> None:
    # Lightning always passes anonymous=None; wandb warns "has no effect" for any value
    assert "anonymous" in WandbLogger(project="p", offline=False)._wandb_init
    assert "anonymous" not in PoseWandbLogger(project="p")._wandb_init


def _metric_record(name: str, goal: str) -> bytes:
    from wandb.proto import wandb_internal_pb2 as pb

    m = pb.MetricRecord()
    m.options.defined = True
    if name.endswith("*"):
        m.glob_name = name
    else:
        m.name = name
    setattr(m.summary, goal, True)
    return m.SerializeToString()


def _offline_run_file(logger_cls, tmp_path: Path) -> bytes:
    import wandb

    logger = logger_cls(project="p", save_dir=str(tmp_path), log_model=False)
    run = logger.experiment
    logger.log_metrics({"val/mpjpe": 50.0}, step=0)
    logger.log_metrics({"val/mpjpe": 60.0}, step=1)
    run_id = run.id
    wandb.finish()
    wandb.teardown()  # stops the W&B service process, which closes (flushes) the .wandb file
    (path,) = tmp_path.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb")
    return path.read_bytes()


@pytest.mark.slow
def test_offline_run_file_records_the_summary_definitions(tmp_path: Path, monkeypatch) -> None:
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    wandb.teardown()  # another test may have left a disabled W&B session in this process
    ours = _offline_run_file(PoseWandbLogger, tmp_path / "ours")
    plain = _offline_run_file(WandbLogger, tmp_path / "plain")
    for name, goal in [("val/mpjpe", "min"), ("val/AP", "max"), ("val/mpjpe/*", "min")]:
        assert _metric_record(name, goal) in ours, name
        assert _metric_record(name, goal) not in plain, name  # the check can fail
    wandb.teardown()


@pytest.mark.parametrize("mode", ["offline", "online"])
def test_resumed_run_ids(mode: str, monkeypatch) -> None:
    from callbacks.cli import wandb_run_ids

    monkeypatch.delenv("WANDB_RUN_ID", raising=False)
    first = wandb_run_ids(mode)
    resumed = wandb_run_ids(mode, resume_id="abc12345", resume_group="first999")
    if mode == "online":  # W&B continues the same run
        assert first == {} and resumed == {"id": "abc12345", "resume": "allow"}
    else:  # a new run per offline segment, all in the first segment's group
        assert first["group"] == first["id"] and len(first["id"]) == 8
        assert resumed["group"] == "first999" and resumed["id"] not in ("abc12345", first["id"])
        assert wandb_run_ids(mode, resume_id="abc12345")["group"] == "abc12345"
