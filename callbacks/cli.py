"""The LightningCLI shared by ``python -m pose2d`` and ``python -m pose3d``.

Constructor arguments of the LightningModule / LightningDataModule become ``--model.*`` /
``--data.*`` flags and YAML keys (no registry). ``links`` ties one value to two places, e.g.
``("data.frames", "model.frames")`` so that ``--data.frames=243`` sizes the lifter too.

On top of plain LightningCLI every run gets (see docs/training.md):

- a run folder ``--run.dir`` (default ``runs/<package>/<run.name>``) holding ``config.yaml``,
  ``checkpoints/``, ``metrics.json``, ``run_info.json``, per-group tables and the logger files.
  The name must be the same in every DDP rank (Lightning re-executes the command line per rank),
  so it never contains a timestamp: ``--run.name`` > ``$WANDB_RUN_ID`` (sweep agents) > the stems
  of the ``--config`` files > ``"default"``.
- the default logger chosen by ``$WANDB_MODE`` only: a WandbLogger (``online``/``offline``;
  :class:`callbacks.wandb_logger.PoseWandbLogger`, whose summary keeps each metric's best value),
  or a CSVLogger when it is ``disabled``. ``--trainer.logger=false`` turns logging off; an
  explicit ``--trainer.logger`` class is used as given.
- TQDM progress bar and plain model summary (:func:`display_callbacks`); ``--help`` and errors
  name ``python -m pose2d|pose3d``.
- ModelCheckpoint (best by the trainer's monitor + ``last.ckpt``; ``--checkpoint.*``), the
  non-finite guard (``--nonfinite.*``), media (``--media.*``), LearningRateMonitor (only with a
  logger), throughput, run info, ``metrics.json``, the per-group table and the RNG states in
  every checkpoint (exact resume).
"""

from __future__ import annotations

import json
import logging
import netrc
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import (
    Callback,
    LearningRateMonitor,
    ModelCheckpoint,
    ModelSummary,
    ProgressBar,
    TQDMProgressBar,
)
from pytorch_lightning.cli import LightningCLI, SaveConfigCallback
from pytorch_lightning.loggers import CSVLogger, Logger
from pytorch_lightning.plugins.io import CheckpointIO

from callbacks.checkpoint_check import CheckpointKind, require_checkpoint
from callbacks.checkpoint_io import AtomicCheckpointIO, remove_stale_temps
from callbacks.cli_args import keys_given
from callbacks.group_table import GroupTable
from callbacks.media import MediaLogger
from callbacks.metrics_file import MetricsFile
from callbacks.nonfinite import NonFiniteGuard
from callbacks.rng_state import RNGState
from callbacks.run_folder import (
    RunLock,
    is_first_process,
    move_aside,
    previous_run,
    refuse_rerun,
    resolve_last,
    set_aside,
)
from callbacks.run_info import RunInfo
from callbacks.throughput import Throughput
from callbacks.user_error import BadInputError, UserError
from callbacks.wandb_logger import PoseWandbLogger

# --ckpt_path values Lightning resolves itself (not files).
LIGHTNING_CKPT_NAMES = ("last", "best", "hpc", "registry")


class RunOptions:
    """Where a run lives and how it is named in W&B.

    Args:
        name: run name (W&B run name and folder name); see the module docstring for the default.
        dir: run folder; default ``runs/<package>/<name>``.
        project: W&B project; default chosen by the trainer (``attnpose-2d`` / ``attnpose-3d``).
        entity: W&B entity (user or team); default: your W&B default entity.
        tags: W&B tags.
        restart: ``fit`` into a folder that holds a finished run: move that run to
            ``<dir>.old<N>/`` and start afresh (without it such a rerun stops; see
            ``callbacks/run_folder.py``).
        progress_every: steps between progress-bar refreshes; each refresh reads the
            ``prog_bar`` metrics off the device (a host sync), so 1 syncs every step.
    """

    def __init__(
        self,
        name: str | None = None,
        dir: str | None = None,  # noqa: A002 - the CLI key reads best as --run.dir
        project: str | None = None,
        entity: str | None = None,
        tags: list[str] | None = None,
        restart: bool = False,
        progress_every: int = 10,
    ) -> None:
        if progress_every < 1:
            raise BadInputError(f"--run.progress_every must be >= 1, got {progress_every}")
        self.name = name
        self.dir = dir
        self.project = project
        self.entity = entity
        self.tags = list(tags or [])
        self.restart = restart
        self.progress_every = progress_every


def default_run_name(config_files: Sequence[str | os.PathLike] = ()) -> str:
    """Deterministic name (identical in every DDP rank): $WANDB_RUN_ID, else config stems."""
    if os.environ.get("WANDB_RUN_ID"):
        return os.environ["WANDB_RUN_ID"]
    stems = [Path(str(c)).stem for c in config_files]
    return "+".join(stems) if stems else "default"


def wandb_credentials_present() -> bool:
    """An API key in the environment or a ``~/.netrc`` entry for the W&B host (``wandb login``)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].rstrip("/")
    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def default_wandb_mode() -> str:
    """``$WANDB_MODE`` stays the one switch; when it is unset and nobody is logged in, it is set
    to ``offline`` (runs sync later with ``wandb sync``) instead of stopping at a login prompt.

    The value is written to the environment, so DDP ranks started afterwards inherit it.
    """
    mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if not mode:
        mode = "online" if wandb_credentials_present() else "offline"
        if mode == "offline":
            print(
                "W&B: not logged in and WANDB_MODE unset -> WANDB_MODE=offline "
                "(set WANDB_MODE=online after `wandb login`, or disabled for CSV only)"
            )
        os.environ["WANDB_MODE"] = mode
    return mode


def wandb_run_ids(
    mode: str, resume_id: str | None = None, resume_group: str | None = None
) -> dict[str, str]:
    """``wandb.init`` id arguments for a new or resumed run.

    Online, a resumed run continues its W&B run (same id, ``resume="allow"``). Offline, W&B
    cannot resume: the resumed segment's history restarts at step 0, and ``wandb sync`` of two
    offline folders with one id keeps only one of them (wandb/wandb#3841, #5865). So every
    offline segment is its own run with a fresh id, and all segments of a run folder share
    ``group`` = the first segment's id; synced in any order, nothing is overwritten.
    """
    if mode not in ("offline", "dryrun"):
        return {"id": resume_id, "resume": "allow"} if resume_id else {}
    run_id = secrets.token_hex(4)  # 8 lowercase hex characters, a valid W&B run id
    if not resume_id:
        run_id = os.environ.get("WANDB_RUN_ID") or run_id
    return {"id": run_id, "group": resume_group or resume_id or run_id}


def default_loggers(
    run_dir: str,
    name: str | None,
    project: str,
    entity: str | None = None,
    tags: Sequence[str] = (),
    resume_id: str | None = None,
    resume_group: str | None = None,
) -> list[Logger]:
    """WandbLogger unless ``WANDB_MODE=disabled`` (then a CSVLogger under ``<run_dir>/csv``).

    ``resume_id``/``resume_group``: the W&B run (and offline group) of the run being resumed, see
    :func:`wandb_run_ids`. Never passes ``offline=True``: that would overwrite ``WANDB_MODE``
    (``disabled`` included).
    """
    mode = default_wandb_mode()
    if mode == "disabled":
        return [CSVLogger(save_dir=run_dir, name="csv")]
    kwargs = wandb_run_ids(mode, resume_id, resume_group)
    return [
        PoseWandbLogger(
            project=project,
            entity=entity,
            name=name,
            tags=list(tags) or None,
            save_dir=run_dir,
            log_model=False,
            **kwargs,
        )
    ]


class RunConfigSaver(SaveConfigCallback):
    """Saves the resolved config to ``<run_dir>/config.yaml`` (overwritten: one file per run
    folder, and each run has its own folder) and sends it to the loggers as ``config``."""

    def __init__(self, parser, config, run_dir: str = ".", **kwargs) -> None:
        kwargs["save_to_log_dir"] = False
        super().__init__(parser, config, **kwargs)
        self.run_dir = run_dir

    def save_config(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        os.makedirs(self.run_dir, exist_ok=True)
        path = os.path.join(self.run_dir, self.config_filename)
        self.parser.save(self.config, path, skip_unset=False, overwrite=True, multifile=False)
        dumped = self.parser.dump(self.config, skip_unset=False, format="json")
        for logger in trainer.loggers:
            logger.log_hyperparams({"config": json.loads(dumped)})


def display_callbacks(trainer_config: dict, progress_every: int = 10) -> list[Callback]:
    """The progress bar and model summary every run shows: TQDM's bar (it/s, ETA; plain lines in
    log files), refreshed every ``progress_every`` steps, and the plain-text ``ModelSummary``,
    unless switched off (``--trainer.enable_progress_bar=false`` / ``enable_model_summary=false``)
    or given as ``--trainer.callbacks``. Lightning would pick the Rich versions whenever ``rich``
    is installed, refreshed every step."""
    given = trainer_config.get("callbacks") or []
    given = given if isinstance(given, list) else [given]
    out: list[Callback] = []
    if trainer_config.get("enable_progress_bar") is not False and not any(
        isinstance(cb, ProgressBar) for cb in given
    ):
        out.append(TQDMProgressBar(refresh_rate=progress_every))
    if trainer_config.get("enable_model_summary") is not False and not any(
        isinstance(cb, ModelSummary) for cb in given
    ):
        out.append(ModelSummary(max_depth=1))
    return out


class _DropMessage(logging.Filter):
    """Drops log records whose message starts with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.prefix)


def quiet_lightning_tips() -> None:
    """Lightning ≥ 2.6 prints an advertisement for its cloud logger on every run without one, and
    a seed line on every start."""
    log = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if not any(isinstance(f, _DropMessage) for f in log.filters):
        log.addFilter(_DropMessage("💡 Tip: For seamless cloud logging"))
    # "Seed set to N" would stand before every one-line user error; the seed is in config.yaml.
    log = logging.getLogger("lightning_fabric.utilities.seed")
    if not any(isinstance(f, _DropMessage) for f in log.filters):
        log.addFilter(_DropMessage("Seed set to"))


class PoseCLI(LightningCLI):
    def __init__(
        self,
        model_class: type[pl.LightningModule],
        datamodule_class: type[pl.LightningDataModule],
        links: Sequence[tuple[str, str]] = (),
        monitor: str | None = None,
        mode: str = "min",
        project: str | None = None,
        checkpoint_kinds: Sequence[CheckpointKind] = (),
        prediction_writer: type[Callback] | None = None,
        **kwargs,
    ) -> None:
        self._links = tuple(links)
        self._checkpoint_kinds = tuple(checkpoint_kinds)
        self._prediction_writer = prediction_writer
        self._monitor = monitor
        self._mode = mode
        self._package = model_class.__module__.split(".")[0]
        self._project = project or f"attnpose-{self._package}"
        kwargs.setdefault("save_config_callback", RunConfigSaver)
        kwargs.setdefault("seed_everything_default", 42)
        # --help and errors name the real command, not "__main__.py"
        kwargs["parser_kwargs"] = {
            "prog": f"python -m {self._package}",
            **kwargs.get("parser_kwargs", {}),
        }
        quiet_lightning_tips()
        super().__init__(model_class, datamodule_class, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:  # noqa: D102
        for src, dst in self._links:
            parser.link_arguments(src, dst)
        parser.add_class_arguments(RunOptions, "run", instantiate=False)
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": self._monitor,
                "checkpoint.mode": self._mode,
                "checkpoint.save_top_k": 1 if self._monitor else 0,
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-epoch{epoch:03d}",
                "checkpoint.auto_insert_metric_name": False,
                # one run per folder: a name is overwritten atomically, never versioned (-v1)
                "checkpoint.enable_version_counter": False,
            }
        )
        parser.add_lightning_class_args(NonFiniteGuard, "nonfinite")
        parser.add_lightning_class_args(MediaLogger, "media")
        if self._prediction_writer is not None:  # what `predict` writes (--prediction.*)
            parser.add_lightning_class_args(self._prediction_writer, "prediction")

    # -- run folder --------------------------------------------------------------------------
    def run_options(self) -> tuple[RunOptions, str]:
        """(options, run folder) for the current subcommand; identical on every rank."""
        cfg = self.config.get(str(self.subcommand), self.config)
        opts = RunOptions(**dict(cfg.get("run") or {}))
        opts.name = opts.name or default_run_name(cfg.get("config") or [])
        opts.project = opts.project or self._project
        run_dir = opts.dir or os.path.join("runs", self._package, opts.name)
        return opts, run_dir

    def instantiate_trainer(self, **kwargs) -> pl.Trainer:  # noqa: D102
        # Missing data is reported before any logger (a W&B run) or run folder is created.
        check_files = getattr(self.datamodule, "check_files", None)
        if self.subcommand and callable(check_files):
            check_files(self.subcommand)
        opts, run_dir = self.run_options()
        self._claim_run_folder(opts, run_dir)
        config = {**self._get(self.config_init, "trainer", default={}), **kwargs}
        if config.get("default_root_dir") is None:
            config["default_root_dir"] = run_dir
        plugins = config.get("plugins")
        plugins = list(plugins) if isinstance(plugins, list | tuple) else [plugins] * bool(plugins)
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            plugins.append(AtomicCheckpointIO())  # <name>.tmp next to the target, os.replace
        config["plugins"] = plugins

        logger = config.get("logger")
        if logger is None or logger is True:
            # inside a sweep agent keep W&B's own run name (the folder is named by the run id)
            wandb_name = None if opts.name == os.environ.get("WANDB_RUN_ID") else opts.name
            resumed = self._resumed_run_info(run_dir)
            logger = default_loggers(
                run_dir,
                wandb_name,
                opts.project,
                opts.entity,
                opts.tags,
                resume_id=resumed.get("wandb_run_id"),
                resume_group=resumed.get("wandb_group"),
            )
            config["logger"] = logger
        has_logger = bool(logger) and logger is not False

        callbacks: list[Callback] = []
        for key in self._parser(self.subcommand).callback_keys:
            cb = self._get(self.config_init, key)
            if isinstance(cb, ModelCheckpoint) and cb.dirpath is None:
                cb.dirpath = os.path.join(run_dir, "checkpoints")
            callbacks.append(cb)
        callbacks += [
            Throughput(),
            RunInfo(dirpath=run_dir),
            MetricsFile(dirpath=run_dir),
            GroupTable(dirpath=run_dir),
            RNGState(),
        ]
        if has_logger and self.subcommand == "fit":
            callbacks.append(LearningRateMonitor(logging_interval="step"))
        shown = display_callbacks(config, opts.progress_every)
        if any(isinstance(cb, ModelSummary) for cb in shown):
            config["enable_model_summary"] = False  # ours replaces Lightning's (Rich) default
        callbacks += shown
        self.save_config_kwargs = {"run_dir": run_dir, **self.save_config_kwargs}
        self.run_dir = run_dir
        return self._instantiate_trainer(config, callbacks)

    def _claim_run_folder(self, opts: RunOptions, run_dir: str) -> None:
        """One run folder = one run (``callbacks/run_folder.py``), before any logger exists:
        the lock, no ``fit`` over a finished run, ``--ckpt_path=last`` → the newest loadable
        checkpoint, stale ``*.ckpt.tmp`` removed."""
        subcommand = str(self.subcommand)
        cfg = self.config_init.get(subcommand, self.config_init)
        ckpt_cb = self._get(self.config_init, "checkpoint", default=None)
        ckpt_dir = getattr(ckpt_cb, "dirpath", None) or os.path.join(run_dir, "checkpoints")
        first = is_first_process()
        if subcommand == "fit" and str(cfg.get("ckpt_path")) == "last":
            path, bad = resolve_last(ckpt_dir)
            if bad and first:
                set_aside(ckpt_dir, bad)
                print(
                    f"warning: cannot load {'; '.join(bad)} (renamed to *.unloadable): resuming "
                    f"from {path}",
                    file=sys.stderr,
                )
            cfg["ckpt_path"] = str(path)
            self.config.get(subcommand, self.config)["ckpt_path"] = str(path)
        if not first:
            return  # DDP ranks started by the first process, which holds the lock
        lock = RunLock(run_dir)
        lock.check()
        found = previous_run(run_dir, ckpt_dir) if subcommand == "fit" else None
        if found is not None and not cfg.get("ckpt_path") and not opts.restart:
            raise refuse_rerun(run_dir, found)
        lock.acquire()
        self._run_lock = lock
        if found is not None and not cfg.get("ckpt_path"):
            print(f"--run.restart: the previous run is now in {move_aside(run_dir)}")
        remove_stale_temps(ckpt_dir)

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        finally:
            lock = getattr(self, "_run_lock", None)
            if lock is not None:
                lock.release()

    def parse_arguments(self, parser, args) -> None:  # noqa: D102
        # kept for _parse_ckpt_path: which --model.* flags the user typed
        self._argv = sys.argv[1:] if args is None else list(args) if isinstance(args, list) else []
        super().parse_arguments(parser, args)

    def _parse_ckpt_path(self) -> None:
        """A ``--ckpt_path`` file (eval or resume) of the wrong kind is one line, before
        Lightning reads its hyper-parameters and before any logger or folder exists; Lightning's
        names (``last``, ``best``...) resolve later.

        Lightning then merges the checkpoint's hyper-parameters over the whole ``model`` config,
        command line included, so ``test --ckpt_path=X --model.flip_test=false`` would silently
        test with the checkpoint's ``flip_test`` (Lightning PR #21455, open). Here a
        ``--model.<key>`` flag on the command line wins over the checkpoint; values from config
        files still give way to it (the checkpoint knows the architecture it was trained with).
        """
        subcommand = self.config.get("subcommand")
        path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if path and self._checkpoint_kinds and str(path) not in LIGHTNING_CKPT_NAMES:
            require_checkpoint(path, self._checkpoint_kinds, "--ckpt_path")
        before = self.config.clone() if subcommand else None
        super()._parse_ckpt_path()
        if before is None:
            return
        for key in keys_given(getattr(self, "_argv", []), "--model."):
            dotted = f"{subcommand}.model.{key}"
            if dotted in before:
                self.config[dotted] = before[dotted]

    def after_validate(self) -> None:  # noqa: D102 - LightningCLI calls after_<subcommand>
        self._refuse_partial("val")

    def after_test(self) -> None:  # noqa: D102
        self._refuse_partial("test")

    def _refuse_partial(self, stage: str) -> None:
        """An evaluation that could not read every input exits with status 2 (after writing
        its metrics, which say how much was skipped) unless ``--data.allow_skipped=true``."""
        metrics = self.trainer.callback_metrics
        images = float(metrics.get(f"{stage}/skipped_images", 0))
        if not images or getattr(self.datamodule, "hparams", {}).get("allow_skipped"):
            return
        persons = int(metrics.get(f"{stage}/skipped_persons", 0))
        root = getattr(self.datamodule, "root", "<root>")
        raise UserError(
            f"{stage}: {int(images)} images under {root} could not be read, so {persons} persons "
            f"were not scored and the metrics in {os.path.join(self.run_dir, 'metrics.json')} "
            f"are partial (they say so: {stage}/skipped_images); fix the files (python -m "
            f"datamodules.coco verify --root {root} lists them) or accept a partial evaluation "
            "with --data.allow_skipped=true"
        )

    def _resumed_run_info(self, run_dir: str) -> dict:
        """``run_info.json`` of the run being resumed (``fit --ckpt_path`` given; else ``{}``):
        its ``wandb_run_id`` (and offline ``wandb_group``) so the curves continue in the same
        W&B run (online) or group (offline, see :func:`wandb_run_ids`)."""
        cfg = self.config.get(str(self.subcommand), self.config)
        if self.subcommand != "fit" or not cfg.get("ckpt_path"):
            return {}
        try:
            with open(os.path.join(run_dir, "run_info.json")) as f:
                info = json.load(f)
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}


def run_cli(
    model_class: type[pl.LightningModule],
    datamodule_class: type[pl.LightningDataModule],
    links: Sequence[tuple[str, str]] = (),
    args: list[str] | None = None,
    monitor: str | None = None,
    mode: str = "min",
    project: str | None = None,
    checkpoint_kinds: Sequence[CheckpointKind] = (),
    prediction_writer: type[Callback] | None = None,
) -> PoseCLI:
    """Entry point used by each package's ``__main__``.

    ``monitor``/``mode``: the validation metric that picks the best checkpoint (2D ``val/AP``
    max, 3D ``val/mpjpe`` min); ``project``: the default W&B project; ``checkpoint_kinds``: the
    :mod:`callbacks.checkpoint_check` kinds a ``--ckpt_path`` file may be;
    ``prediction_writer``: the callback that writes the ``predict`` outputs
    (:mod:`callbacks.prediction_writer`), configured by ``--prediction.*``.
    """
    return PoseCLI(
        model_class,
        datamodule_class,
        links=links,
        args=args,
        monitor=monitor,
        mode=mode,
        project=project,
        checkpoint_kinds=checkpoint_kinds,
        prediction_writer=prediction_writer,
    )


def exit_on_missing_files(
    main: Callable[[list[str] | None], object],
    args: list[str] | None,
    hint: str,
    wants_hint: Callable[[str], bool] = lambda msg: "synthetic" not in msg,
) -> int:
    """Run ``main(args)``; a missing dataset/checkpoint becomes one ``error:`` message (plus
    ``hint`` when ``wants_hint(message)``) and exit status 2, a :class:`UserError` its own
    message. ``POSE_TRACEBACK=1`` re-raises."""
    try:
        main(args)
    except UserError as e:
        if os.environ.get("POSE_TRACEBACK"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        if os.environ.get("POSE_TRACEBACK"):
            raise
        msg = str(e)
        print(f"error: {msg}" + (f"\n{hint}" if wants_hint(msg) else ""), file=sys.stderr)
        return 2
    return 0
