"""One run folder = one run: the lock held while a run is active, and the resume/rerun policy.

- While a run (any subcommand) is active its folder holds ``run.lock`` (pid, start time, host,
  command). A second run with the same folder stops with one line; a lock whose process is gone
  (killed, or the pid reused by another program) is stale and simply taken over.
- ``fit`` into a folder that already holds a run (a checkpoint or ``metrics.json``) without
  ``--ckpt_path`` stops with one line: resume it (``RESUME=1``), name another run
  (``--run.name``), or ``--run.restart=true``, which moves the old run to ``<dir>.old<N>/``.
  So ``runs/<package>/<name>/checkpoints/last.ckpt`` always belongs to the run whose config,
  metrics and run info sit next to it.
- ``--ckpt_path=last`` resumes from the newest *loadable* checkpoint in the folder (a truncated
  ``last.ckpt`` is reported and skipped), and stops with one line when there is none.

Only the first process (global rank 0) takes the lock; DDP ranks started by it resolve the same
checkpoint from the same files.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import sys
import time
from pathlib import Path

from callbacks.checkpoint_io import unloadable_reason
from callbacks.user_error import UserError

LOCK = "run.lock"
_RANK_VARS = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


class RunFolderError(UserError):
    """The run folder is in use, already holds a run, or has nothing to resume."""


def is_first_process() -> bool:
    """Global rank 0 as far as the environment tells before the Trainer exists."""
    return all(os.environ.get(v, "0") in ("", "0") for v in _RANK_VARS)


def _start_time(pid: int) -> str | None:
    """The process start time (clock ticks since boot, Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    now = _start_time(pid)
    return start is None or now is None or now == start


class RunLock:
    """``<run_dir>/run.lock`` for as long as this process runs there.

    Args:
        run_dir: the run folder (created when missing).
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK
        self.held = False

    def holder(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None

    def _active(self, holder: dict | None) -> bool:
        if holder is None or holder["pid"] == os.getpid():
            return False  # unreadable (a kill while writing it) or ours (an earlier in-process run)
        if holder.get("host") not in (None, socket.gethostname()):
            return True  # another machine: cannot check, assume it runs
        return _alive(holder["pid"], holder.get("start"))

    def check(self) -> None:
        """Raise :class:`RunFolderError` when another live run holds the lock."""
        holder = self.holder()
        if self._active(holder):
            since = time.strftime("%Y-%m-%d %H:%M", time.localtime(holder.get("time", 0)))
            raise RunFolderError(
                f"{self.run_dir} is in use by another run (pid {holder['pid']} on "
                f"{holder.get('host')}, since {since}); wait for it to end or give this run "
                f"another name: --run.name=<name> (remove {self.path} only if that run is gone)"
            )

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunFolderError` naming the run that holds it."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self.check()
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            info = {
                "pid": os.getpid(),
                "start": _start_time(os.getpid()),
                "host": socket.gethostname(),
                "time": time.time(),
                "command": sys.argv,
            }
            with os.fdopen(fd, "w") as f:
                json.dump(info, f)
            self.held = True
            atexit.register(self.release)
            return
        raise RunFolderError(f"could not take the lock {self.path}; remove it if no run is active")

    def release(self) -> None:
        if self.held:
            holder = self.holder()
            if holder is None or holder["pid"] == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False


def previous_run(run_dir: str | os.PathLike, ckpt_dir: str | os.PathLike) -> Path | None:
    """A file showing that ``run_dir`` already holds a run: a checkpoint or ``metrics.json``."""
    ckpts = sorted(Path(ckpt_dir).glob("*.ckpt")) if Path(ckpt_dir).is_dir() else []
    if ckpts:  # name last.ckpt when there is one: the file the hints are about
        return next((p for p in ckpts if p.name == "last.ckpt"), ckpts[0])
    metrics = Path(run_dir) / "metrics.json"
    return metrics if metrics.is_file() else None


def refuse_rerun(run_dir: str | os.PathLike, found: Path) -> RunFolderError:
    return RunFolderError(
        f"{run_dir} already holds a run ({found}); continue it with RESUME=1 (--ckpt_path=last), "
        "start another with --run.name=<new name>, or move the old one aside and start afresh "
        "with --run.restart=true"
    )


def move_aside(run_dir: str | os.PathLike) -> Path:
    """Move everything in ``run_dir`` but the lock into a new ``<run_dir>.old<N>/``."""
    run_dir = Path(run_dir)
    n = 1
    while (old := run_dir.with_name(f"{run_dir.name}.old{n}")).exists():
        n += 1
    old.mkdir()
    for entry in run_dir.iterdir():
        if entry.name != LOCK:
            entry.rename(old / entry.name)
    return old


def resolve_last(ckpt_dir: str | os.PathLike) -> tuple[Path, list[str]]:
    """The newest loadable checkpoint in ``ckpt_dir`` (``last*.ckpt`` first among equals) and
    the ``name (reason)`` of every newer one that cannot be loaded (see :func:`set_aside`)."""
    ckpt_dir = Path(ckpt_dir)
    found = sorted(ckpt_dir.glob("*.ckpt")) if ckpt_dir.is_dir() else []
    if not found:
        raise RunFolderError(
            f"--ckpt_path=last (RESUME=1) but {ckpt_dir} holds no checkpoint, so there is "
            "nothing to resume; run without RESUME=1 to start this run, or pass "
            "--ckpt_path=<file>"
        )
    found.sort(key=lambda p: (p.stat().st_mtime, p.name.startswith("last")), reverse=True)
    bad = []
    for path in found:
        reason = unloadable_reason(path)
        if reason is None:
            return path, bad
        bad.append(f"{path.name} ({reason})")
    raise RunFolderError(
        f"--ckpt_path=last (RESUME=1) but no checkpoint in {ckpt_dir} can be loaded: "
        f"{'; '.join(bad)}; start afresh with --run.restart=true or pass --ckpt_path=<file>"
    )


def set_aside(ckpt_dir: str | os.PathLike, bad: list[str]) -> list[Path]:
    """Rename the unloadable checkpoints named in ``bad`` (``name (reason)``) to
    ``<name>.unloadable``: kept for inspection, never picked again, and their names free for the
    resumed run (else Lightning would write ``last-v1.ckpt`` next to a broken ``last.ckpt``)."""
    moved = []
    for entry in bad:
        path = Path(ckpt_dir) / entry.split(" (", 1)[0]
        if path.is_file():
            path.rename(path.with_name(path.name + ".unloadable"))
            moved.append(path)
    return moved
