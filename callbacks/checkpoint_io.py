"""Checkpoints written atomically next to their target, and the check that one can be loaded.

Lightning's own writer stages the file in ``$TMPDIR`` and moves it; when the run folder is on
another filesystem that move is a copy in place, so a kill (or a full disk) mid-copy leaves a
truncated ``last.ckpt``. :class:`AtomicCheckpointIO` writes ``<name>.tmp`` in the target folder,
flushes and fsyncs it, then ``os.replace``\\ s it over the target: the old checkpoint stays intact
until the new one is complete. A ``.tmp`` left by a kill is removed when the next run starts
(:func:`remove_stale_temps`).
"""

from __future__ import annotations

import errno
import os
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from callbacks.user_error import UserError

TMP_SUFFIX = ".tmp"


class DiskFullError(UserError, OSError):
    """No space (or quota) left while writing a checkpoint: one line, exit status 2."""

    def __str__(self) -> str:
        return str(self.strerror)


def _is_local(path: str | os.PathLike) -> bool:
    return "://" not in str(path) or str(path).startswith("file://")


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` into ``<path>.tmp`` in the same folder, fsync, ``os.replace`` (local paths;
    remote URLs keep Lightning's writer)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None or not _is_local(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(str(path).removeprefix("file://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + TMP_SUFFIX)
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException as e:
            tmp.unlink(missing_ok=True)  # e.g. disk full: the previous checkpoint is untouched
            if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFullError(
                    e.errno,
                    f"cannot write checkpoint {path}: {e.strerror} (the checkpoints written "
                    "before are untouched); free space on that disk, then continue with "
                    "RESUME=1 (--ckpt_path=last)",
                ) from e
            raise
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the ``*.ckpt.tmp`` files a killed run left in ``folder``; returns them."""
    stale = sorted(Path(folder).glob(f"*.ckpt{TMP_SUFFIX}")) if Path(folder).is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def unloadable_reason(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a complete checkpoint (None when it is): truncated, corrupt, empty.

    Checks the zip container ``torch.save`` writes (every member's CRC), which catches a
    truncated or partly overwritten file without unpickling anything.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return "empty file"
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
            if bad is not None:
                return f"corrupt member {bad}"
            if not any(n.endswith("data.pkl") for n in z.namelist()):
                return "not a torch checkpoint"
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as e:
        return f"truncated or not a checkpoint ({e.__class__.__name__}: {e})"
    return None
