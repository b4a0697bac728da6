"""``python -m pose2d|pose3d fit --help`` explains every model and data argument, enumerated
options are ``Literal`` (listed in --help, wrong values rejected at parse time), the usage line
names the real command, and runs show the documented progress bar / summary without the tip."""

from __future__ import annotations

import logging

import pytest
from jsonargparse import ArgumentParser
from pytorch_lightning.callbacks import ModelSummary, RichProgressBar, TQDMProgressBar

from callbacks.cli import display_callbacks, quiet_lightning_tips
from datamodules.h36m import H36MDataModule
from datamodules.mpi_inf_3dhp import MPIINF3DHPDataModule


@pytest.fixture(scope="module")
def parsers(cli_parsers):
    return cli_parsers


def undocumented(parser, groups=("model", "data")) -> list[str]:
    """Options ``--<group>.<arg>`` whose help has no description (jsonargparse then shows only
    the ``(type: ..., default: ...)`` tail)."""
    out = []
    for action in parser._actions:
        for opt in action.option_strings:
            if any(opt.startswith(f"--{g}.") for g in groups) and not opt.endswith(".help"):
                text = (action.help or "").strip()
                if not text or text.startswith("(type"):
                    out.append(opt)
    return out


class _Undocumented:
    """A class with one argument left out of its docstring.

    Args:
        alpha: documented.
    """

    def __init__(self, alpha: int = 1, beta: str = "x") -> None:
        self.alpha, self.beta = alpha, beta


def test_the_walker_finds_a_missing_description() -> None:
    p = ArgumentParser()
    p.add_class_arguments(_Undocumented, "model")
    assert undocumented(p) == ["--model.beta"]


@pytest.mark.parametrize("package", ["pose2d", "pose3d"])
def test_every_model_and_data_argument_has_a_description(parsers, package) -> None:
    _, fit = parsers[package]
    names = [o for a in fit._actions for o in a.option_strings if o.startswith("--model.")]
    assert len(names) > 15  # the walk sees the constructor arguments
    assert undocumented(fit) == []


@pytest.mark.parametrize("cls", [H36MDataModule, MPIINF3DHPDataModule])
def test_every_3d_data_argument_has_a_description(cls) -> None:
    # pose3d picks its data module by class_path; --data.help <class> shows these
    p = ArgumentParser()
    p.add_class_arguments(cls, "data")
    assert len(p._actions) > 8 and undocumented(p) == []


@pytest.mark.parametrize("package", ["pose2d", "pose3d"])
def test_usage_names_the_real_command(parsers, package) -> None:
    root, fit = parsers[package]
    assert root.prog == f"python -m {package}"
    assert fit.format_usage().startswith(f"usage: python -m {package} [options] fit")


CHOICES = {
    "pose3d": {
        "model.sam_position": ["before_msa", "after_msa", "after_mlp"],
        "model.tam_position": ["before_msa", "after_msa", "after_mlp"],
        "model.tam_mode": ["frame", "joint", "channel"],
        "model.head": ["sequence", "center"],
        "model.attn_impl": ["auto", "sdpa", "math"],
        "model.optimizer": ["adam", "adamw"],
    },
    "pose2d": {
        "model.decode_method": ["standard", "dark", "udp"],
        "model.cam_modules": ["last", "all"],
        "model.metric_backend": ["pycocotools", "faster_coco_eval"],
    },
}


@pytest.mark.parametrize("package", ["pose2d", "pose3d"])
def test_literal_options_list_their_choices_and_reject_others(parsers, package, capsys) -> None:
    _, fit = parsers[package]
    text = fit.format_help()
    for key, choices in CHOICES[package].items():
        assert f"--{key} {{{','.join(choices)}}}" in text, key  # --help lists the choices
        with pytest.raises(SystemExit):
            fit.parse_args([f"--{key}={choices[0]}s"])  # e.g. --model.tam_mode=frames
        assert "Expected a typing.Literal" in capsys.readouterr().err


def test_cam_placement_and_boxes_accept_their_forms_only(parsers, capsys) -> None:
    _, fit = parsers["pose2d"]
    ok = fit.parse_args(["--model.cam_placement=sub321", "--data.val_boxes=gt"])
    assert ok.model.cam_placement == "sub321"
    ok = fit.parse_args(["--model.cam_placement=2.0,3.1", "--data.val_boxes=dets/a.json"])
    assert ok.model.cam_placement == "2.0,3.1" and ok.data.val_boxes == "dets/a.json"
    for bad in ("--model.cam_placement=sub4", "--model.cam_placement=5.0", "--data.val_boxes=det"):
        with pytest.raises(SystemExit):
            fit.parse_args([bad])
    assert "Does not validate against any of the Union subtypes" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        fit.parse_args(["--trainer.precision=17"])  # Lightning's own Literal


def test_parsed_restricted_strings_are_saved_as_plain_str(parsers) -> None:
    from pose2d.module import HeatmapModule

    _, fit = parsers["pose2d"]
    cfg = fit.parse_args(["--model.cam_placement=2.0"])
    assert type(cfg.model.cam_placement) is not str  # jsonargparse's CamSites str subclass
    m = HeatmapModule(width=8, stem_channels=16, cam_placement=cfg.model.cam_placement)
    assert type(m.hparams.cam_placement) is str  # torch.load(weights_only=True)-safe


def test_tqdm_bar_and_plain_summary_unless_switched_off_or_given() -> None:
    kinds = [type(cb) for cb in display_callbacks({})]
    assert kinds == [TQDMProgressBar, ModelSummary]
    off = {"enable_progress_bar": False, "enable_model_summary": False}
    assert display_callbacks(off) == []
    given = display_callbacks({"callbacks": [RichProgressBar()]})
    assert [type(cb) for cb in given] == [ModelSummary]


def test_progress_bar_reads_the_metrics_every_progress_every_steps(monkeypatch, tmp_path) -> None:
    import pytorch_lightning as pl
    from callbacks_toy import ToyData, ToyModule

    reads = []
    real = TQDMProgressBar.get_metrics
    monkeypatch.setattr(
        TQDMProgressBar, "get_metrics", lambda self, *a: reads.append(1) or real(self, *a)
    )

    def fit(every: int) -> int:
        reads.clear()
        trainer = pl.Trainer(accelerator="cpu", max_steps=60, logger=False, limit_val_batches=0,
                             enable_checkpointing=False, enable_model_summary=False,
                             callbacks=display_callbacks({}, every)[:1],
                             default_root_dir=tmp_path)  # fmt: skip
        trainer.fit(ToyModule(), ToyData())
        return len(reads)

    assert display_callbacks({}, 7)[0].refresh_rate == 7
    every_step, every_10 = fit(1), fit(10)
    assert every_step >= 60 and every_10 <= every_step // 4  # each read is a host sync on GPU


def test_lightning_cloud_logger_tip_is_dropped(caplog) -> None:
    quiet_lightning_tips()
    log = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    with caplog.at_level(logging.INFO):
        log.info("💡 Tip: For seamless cloud logging and experiment tracking, try ...")
        log.info("GPU available: False")
    assert "litlogger" not in caplog.text and "Tip" not in caplog.text
    assert "GPU available" in caplog.text


def test_cam_preset_choices_are_the_hrnet_presets() -> None:
    from typing import get_args

    from pose2d.hrnet import CAM_PRESETS, CamPreset

    assert get_args(CamPreset) == tuple(CAM_PRESETS)


def test_progress_every_below_one_is_a_user_error() -> None:
    from callbacks.cli import RunOptions
    from callbacks.user_error import UserError

    with pytest.raises(UserError, match="--run.progress_every must be >= 1, got 0"):
        RunOptions(progress_every=0)
