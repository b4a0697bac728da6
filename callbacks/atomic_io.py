"""Atomic file writes: a temp file in the target's folder, flushed and fsynced, then ``os.replace``.

Readers see the old file or the complete new one, never half of one; a failure (or a kill)
leaves at most a ``.<name>.tmp-<pid>`` next to the target, never a truncated target.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(f)`` on a binary temp file next to ``path``, then move it onto ``path``.

    Args:
        path: the final file; its folder must exist.
        write: writes the whole content into the open file object it is given.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` of a UTF-8 text."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))
