"""Fast tests of the shared callbacks and CLI pieces (single process, toy module)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from callbacks_toy import GROUPS, ToyData, ToyModule
from pytorch_lightning.loggers import CSVLogger, WandbLogger

from callbacks.cli import default_loggers, default_run_name, run_cli
from callbacks.group_table import group_table, to_markdown
from callbacks.media import (
    MediaLogger,
    denormalize_image,
    heatmap_overlay,
    skeleton_3d_figure,
)
from callbacks.metrics_file import MetricsFile, plain_metrics
from callbacks.nonfinite import NonFiniteGuard, all_finite
from callbacks.rng_state import collect_rng_states, set_rng_states
from callbacks.run_folder import RunFolderError
from callbacks.throughput import Throughput, count_parameters
from datamodules.skeleton import H36M


def _trainer(tmp_path: Path, **kw) -> pl.Trainer:
    args = dict(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=str(tmp_path),
        num_sanity_val_steps=0,
    )
    args.update(kw)
    return pl.Trainer(**args)


# -- non-finite guard -------------------------------------------------------------------------
def test_all_finite() -> None:
    assert all_finite([torch.ones(3), torch.zeros(2, 2)])
    assert all_finite([])
    assert not all_finite([torch.ones(3), torch.tensor([1.0, float("nan")])])
    assert not all_finite([torch.tensor([float("inf")])])


def test_nonfinite_guard_stops_and_saves_last_good_state(tmp_path: Path) -> None:
    pl.seed_everything(0)
    guard = NonFiniteGuard(dirpath=str(tmp_path))
    model = ToyModule(nan_at_step=3)
    trainer = _trainer(tmp_path, callbacks=[guard], max_epochs=2)
    with pytest.raises(FloatingPointError, match=r"global step 3 \(loss = nan\)"):
        trainer.fit(model, ToyData())
    ckpt = torch.load(tmp_path / "nonfinite.ckpt", weights_only=True)
    assert ckpt["global_step"] == 3  # saved before the bad step touched anything
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_nonfinite_guard_catches_gradients(tmp_path: Path) -> None:
    class GradNaN(ToyModule):
        def on_after_backward(self) -> None:
            if self.global_step == 2:
                next(self.parameters()).grad.fill_(float("inf"))

    guard = NonFiniteGuard(save_checkpoint=False)
    with pytest.raises(FloatingPointError, match="non-finite gradient"):
        _trainer(tmp_path, callbacks=[guard]).fit(GradNaN(), ToyData())


def test_nonfinite_inputs_are_named_instead_of_lr_advice(tmp_path: Path) -> None:
    from callbacks.nonfinite import NonFiniteInputError

    class NaNData(ToyData):
        def train_dataloader(self):
            loader = super().train_dataloader()
            loader.dataset.x[37, 1, 4] = float("nan")  # one bad sample in one window
            return torch.utils.data.DataLoader(loader.dataset, batch_size=64)

    pl.seed_everything(0)
    guard = NonFiniteGuard(save_checkpoint=False)
    with pytest.raises(NonFiniteInputError) as e:
        _trainer(tmp_path, callbacks=[guard]).fit(ToyModule(), NaNData())
    msg = str(e.value)
    assert msg.startswith("non-finite loss at epoch 0, global step 0 (loss = nan): the input "
                          "batch holds NaN/Inf in input_2d (first: index 37)")  # fmt: skip
    assert "learning rate" not in msg and "\n" not in msg

    class Described(NaNData):
        def describe_sample(self, batch, i):
            return f"toy.npz sample {int(batch['index'][i])}"

    with pytest.raises(NonFiniteInputError, match=r"\(first: toy.npz sample 37\)"):
        _trainer(tmp_path, callbacks=[guard]).fit(ToyModule(), Described())


def test_nonfinite_guard_reads_a_finite_loss_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A healthy step costs one device sync (the finiteness test); the loss value is only
    read (``.item()``, a second sync on CUDA) for the error message of a bad step."""
    from types import SimpleNamespace

    trainer = SimpleNamespace(strategy=SimpleNamespace(reduce_boolean_decision=lambda b, all: b))

    def no_item(self):
        raise AssertionError(".item() on a finite loss")

    monkeypatch.setattr(torch.Tensor, "item", no_item)
    NonFiniteGuard(save_checkpoint=False).on_before_backward(trainer, None, torch.tensor(0.5))


# -- small pure helpers -----------------------------------------------------------------------
def test_group_table_and_markdown() -> None:
    metrics = {
        "val/mpjpe/Walking": 40.0,
        "val/p2/Walking": 30.0,
        "val/mpjpe/Eating": 50.5,
        "val/mpjpe": 45.0,
        "test/mpjpe/Walking": 1.0,
        "val/mpjpe/Unknown": 9.0,
    }
    cols, rows = group_table(metrics, "val", GROUPS)
    assert cols == ["group", "mpjpe", "p2"]
    assert rows == [["Walking", 40.0, 30.0], ["Eating", 50.5, None]]
    md = to_markdown(cols, rows).splitlines()
    assert md[0] == "| group | mpjpe | p2 |"
    assert md[3] == "| Eating | 50.50 | - |"


def test_plain_metrics_and_counts() -> None:
    out = plain_metrics({"a": torch.tensor(2.5), "b": torch.ones(3), "c": 3, "d": float("nan")})
    assert out == {"a": 2.5, "c": 3, "d": None}
    lin = torch.nn.Linear(4, 3)
    lin.bias.requires_grad_(False)
    assert count_parameters(lin) == (15, 12)


def test_rng_states_round_trip_and_weights_only(tmp_path: Path) -> None:
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    states = collect_rng_states()
    torch.save(states, tmp_path / "s.pt")
    want = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    set_rng_states(torch.load(tmp_path / "s.pt", weights_only=True))
    got = (torch.rand(3), np.random.rand(3), random.random())
    torch.testing.assert_close(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[2] == want[2]


# -- logger choice ----------------------------------------------------------------------------
def test_default_loggers_follow_wandb_mode(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    (csv,) = default_loggers(str(tmp_path), "r", "p")
    assert isinstance(csv, CSVLogger)
    assert Path(csv.log_dir).parent == tmp_path / "csv"
    monkeypatch.setenv("WANDB_MODE", "offline")
    (wb,) = default_loggers(str(tmp_path), "r", "p", tags=["a"])
    assert isinstance(wb, WandbLogger)
    assert os.environ["WANDB_MODE"] == "offline"  # not overwritten (no offline=True)
    assert wb._wandb_init["name"] == "r" and wb._wandb_init["tags"] == ["a"]


def test_default_run_name(monkeypatch) -> None:
    monkeypatch.delenv("WANDB_RUN_ID", raising=False)
    assert default_run_name(["configs/pose3d/paper.yaml", "x/synthetic.yaml"]) == (
        "paper+synthetic"
    )
    assert default_run_name([]) == "default"
    monkeypatch.setenv("WANDB_RUN_ID", "abc123")
    assert default_run_name(["configs/pose3d/paper.yaml"]) == "abc123"


# -- throughput / metrics file ----------------------------------------------------------------
def test_throughput_and_metrics_file(tmp_path: Path) -> None:
    tp = Throughput(log_every_n_steps=2)
    mf = MetricsFile(dirpath=str(tmp_path))
    logger = CSVLogger(save_dir=str(tmp_path), name="csv")
    trainer = _trainer(tmp_path, callbacks=[tp, mf], logger=logger, max_epochs=2)
    trainer.fit(ToyModule(), ToyData(n_train=64, batch_size=8))
    assert tp.epoch_seconds > 0
    # 64 samples per epoch on one process
    assert tp.epoch_samples_per_s == pytest.approx(64 / tp.epoch_seconds)
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data["params"] == 99 and data["global_step"] == 16
    assert np.isfinite(data["validate"]["val/mpjpe"])
    assert set(data["validate"]) >= {f"val/mpjpe/{g}" for g in GROUPS}
    header = (Path(logger.log_dir) / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"perf/train_samples_per_s", "perf/train_epoch_s", "model/params"} <= set(header)


# -- media ------------------------------------------------------------------------------------
def test_media_renderers() -> None:
    pose = np.random.default_rng(0).normal(size=(H36M.num_joints, 3)) * 0.3
    img = skeleton_3d_figure(pose, pose * 0.9, H36M, title="x", size_px=200)
    assert img.shape == (200, 200, 3) and img.dtype == np.uint8
    assert (img < 250).any(axis=-1).mean() > 0.01  # something was drawn
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    x = torch.zeros(3, 8, 6)
    assert (denormalize_image(x, mean, std) == 128).all()
    hm = np.zeros((17, 4, 3), np.float32)
    hm[0, 1, 1] = 1.0
    out = heatmap_overlay(np.zeros((16, 12, 3), np.uint8), hm)
    assert out.shape == (16, 12, 3) and out.max() > 0


def test_media_logger_logs_3d_pictures_only_with_wandb(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    logged: list = []
    wb = WandbLogger(save_dir=str(tmp_path))
    monkeypatch.setattr(wb, "log_image", lambda key, images, **kw: logged.append((key, images, kw)))
    media = MediaLogger(every_n_epochs=1, num_samples=2)
    trainer = _trainer(tmp_path, callbacks=[media], logger=wb, limit_val_batches=1)
    trainer.fit(ToyModule(), ToyData())
    assert len(logged) == 1
    key, images, kw = logged[0]
    assert key == "val/media/skeleton_3d" and len(images) == 2
    assert images[0].shape[-1] == 3 and kw["caption"][0].startswith("Walking MPJPE")
    # CSV logger: nothing rendered
    logged.clear()
    trainer = _trainer(tmp_path, callbacks=[media], logger=CSVLogger(str(tmp_path)))
    trainer.fit(ToyModule(), ToyData())
    assert logged == []
    _reset_wandb()


def _reset_wandb() -> None:
    """Close W&B completely: a disabled-mode run survives ``finish()``, and the mode is cached
    by ``wandb.setup``, so without this a later WandbLogger in the same process is a no-op."""
    import wandb

    wandb.finish()
    wandb.teardown()
    wandb.run = None


def _wandb_file_with(path: Path, needle: str, timeout_s: float = 30.0) -> bytes:
    """The bytes of an offline ``.wandb`` file once it holds ``needle``: the W&B service writes it
    from another process, so a read straight after ``finish()`` can still see only the header."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        data = path.read_bytes()
        if needle.encode() in data or time.monotonic() > deadline:
            return data
        time.sleep(0.2)


# -- the CLI end to end, in process -----------------------------------------------------------
def test_cli_run_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run_dir = tmp_path / "run"
    args = [
        "fit",
        f"--run.dir={run_dir}",
        "--trainer.max_epochs=2",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--data.frames=5",
        "--data.n_train=16",
    ]

    def run(extra: list[str]):
        return run_cli(
            ToyModule,
            ToyData,
            links=[("data.frames", "model.frames")],
            args=args + extra,
            monitor="val/mpjpe",
        )

    run([])
    with pytest.raises(RunFolderError, match="already holds a run"):
        run([])  # one folder = one run: a rerun without --ckpt_path stops
    cli = run(["--run.restart=true"])  # ... or moves the old run aside
    old = run_dir.with_name("run.old1")
    assert (old / "checkpoints" / "last.ckpt").is_file() and (old / "metrics.json").is_file()
    assert not (run_dir / "run.lock").exists()  # released at the end of the run
    assert cli.model.hparams.frames == 5  # the link fed the model
    files = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()}
    assert {"config.yaml", "metrics.json", "run_info.json", "val_per_group.md"} <= files
    assert "checkpoints/last.ckpt" in files
    assert any(f.startswith("checkpoints/best-epoch") for f in files)
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["frames"] == 5 and "rng_states" in ckpt
    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["params"] == 99 and len(info["git_commit"]) >= 7
    assert "frames: 5" in (run_dir / "config.yaml").read_text()
    best = json.loads((run_dir / "metrics.json").read_text())["best"]
    assert (
        best["val/mpjpe"]
        <= json.loads((run_dir / "metrics.json").read_text())["validate"]["val/mpjpe"] + 1e-6
    )


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_cli_wandb_offline_run_folder_and_resume_is_a_new_segment(
    tmp_path: Path, monkeypatch
) -> None:
    """Offline W&B cannot resume a run (a second offline folder with the same id overwrites the
    first on ``wandb sync``), so the resumed fit is a new run in the first one's group, and the
    first segment's files are left as they were."""

    _reset_wandb()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = tmp_path / "run"
    args = [
        "fit",
        f"--run.dir={run_dir}",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--media.every_n_epochs=1",
        "--media.num_samples=3",
    ]
    links = [("data.frames", "model.frames")]
    run_cli(
        ToyModule, ToyData, links=links, args=[*args, "--trainer.max_epochs=1"], monitor="val/mpjpe"
    )
    _reset_wandb()  # teardown stops the W&B service, which closes (flushes) the .wandb file
    (offline,) = list((run_dir / "wandb").glob("offline-run-*"))
    run_id = json.loads((run_dir / "run_info.json").read_text())["wandb_run_id"]
    assert offline.name.endswith(run_id) and (offline / f"run-{run_id}.wandb").is_file()
    media = offline / "files" / "media"
    assert len(list((media / "images" / "val" / "media").glob("skeleton_3d_*.png"))) == 3
    assert len(list((media / "table" / "val").glob("per_group_*.table.json"))) == 1
    assert not (run_dir / "csv").exists()  # W&B is the logger; CSV only when disabled

    first_bytes = _wandb_file_with(offline / f"run-{run_id}.wandb", run_id)
    assert json.loads((run_dir / "run_info.json").read_text())["wandb_group"] == run_id

    run_cli(
        ToyModule,
        ToyData,
        links=links,
        args=[*args, "--trainer.max_epochs=2", "--ckpt_path=last"],
        monitor="val/mpjpe",
    )
    _reset_wandb()
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    info = json.loads((run_dir / "run_info.json").read_text())
    second_id = info["wandb_run_id"]
    assert len(runs) == 2 and second_id != run_id and info["wandb_group"] == run_id
    (second,) = [r for r in runs if r.name.endswith(second_id)]
    assert run_id.encode() in _wandb_file_with(second / f"run-{second_id}.wandb", second_id)
    assert (offline / f"run-{run_id}.wandb").read_bytes() == first_bytes  # first kept as is
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1


@pytest.mark.gpu
def test_throughput_peak_memory_and_guard_under_fp16_on_cuda(tmp_path: Path) -> None:
    logger = CSVLogger(save_dir=str(tmp_path), name="csv")
    callbacks = [Throughput(log_every_n_steps=2), NonFiniteGuard(dirpath=str(tmp_path))]
    trainer = _trainer(
        tmp_path, accelerator="gpu", devices=1, precision="16-mixed", logger=logger,
        callbacks=callbacks,
    )  # fmt: skip
    trainer.fit(ToyModule(), ToyData())
    header = (Path(logger.log_dir) / "metrics.csv").read_text().splitlines()
    cols = header[0].split(",")
    assert "perf/peak_gpu_mem_gib" in cols
    i = cols.index("perf/peak_gpu_mem_gib")
    assert max(float(r.split(",")[i]) for r in header[1:] if r.split(",")[i]) > 0


def test_wandb_mode_defaults_to_offline_without_login(monkeypatch, tmp_path):
    from callbacks import cli

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    assert cli.default_wandb_mode() == "offline"
    assert os.environ["WANDB_MODE"] == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert cli.default_wandb_mode() == "disabled"  # an explicit choice is never overridden
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert cli.default_wandb_mode() == "online"


def test_command_line_model_keys() -> None:
    from callbacks.cli_args import keys_given

    argv = ["test", "--config", "c.yaml", "--model.flip_test=false", "--model.eval_root", "zero",
            "--data.init_args.frames=9", "--ckpt_path=x.ckpt", "--model."]  # fmt: skip
    assert keys_given(argv, "--model.") == ["flip_test", "eval_root"]
