"""Folders our synthetic generators own: a small manifest marks them, nothing else is written over.

A generator writes only into a missing or empty folder, or into one that carries its manifest
``GENERATED.json`` (generator name, version, parameters incl. seed). The manifest is written
first with ``"complete": false`` (from then on the folder is ours, so an interrupted generation is
simply redone) and rewritten, atomically, with ``"complete": true`` after the last data file.
Any other non-empty folder is the user's: :func:`claim` refuses it with one line naming a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from callbacks.user_error import UserError

MARKER = "GENERATED.json"


class ForeignFolderError(UserError):
    """A generator was asked to write into a folder holding files it did not write."""


def read_marker(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest of ``folder``, or None when there is none (or it is not ours / unreadable)."""
    try:
        marker = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and "generator" in marker else None


def owned_by(folder: str | os.PathLike, generator: str) -> bool:
    marker = read_marker(folder)
    return marker is not None and marker["generator"] == generator


def is_current(folder: str | os.PathLike, generator: str, version: int, params: dict) -> bool:
    """Whether ``folder`` holds a complete set of ``generator`` made with exactly ``params``."""
    marker = read_marker(folder)
    return (
        marker is not None
        and marker["generator"] == generator
        and marker.get("version") == version
        and marker.get("complete") is True
        and marker.get("params") == json.loads(json.dumps(params))
    )


def foreign_file(
    folder: str | os.PathLike, generator: str, expected: Sequence[str] = ()
) -> Path | None:
    """A file that stops ``generator`` from writing into ``folder`` (None: free or ours).

    Files named in ``expected`` (the generator's own outputs, relative to ``folder``) are named
    first; otherwise any file, found without listing the whole tree.
    """
    folder = Path(folder)
    if not folder.exists() or owned_by(folder, generator):
        return None
    if not folder.is_dir():
        return folder
    for name in expected:
        if (folder / name).exists():
            return folder / name
    for dirpath, _, files in os.walk(folder):
        if files:
            return Path(dirpath) / sorted(files)[0]
    return None


def claim(
    folder: str | os.PathLike, generator: str, ways_out: str, expected: Sequence[str] = ()
) -> None:
    """Raise :class:`ForeignFolderError` unless ``generator`` may write into ``folder``.

    Args:
        folder: the folder the generator would write into.
        generator: generator name, as stored in the manifest (e.g. ``datamodules.synthetic_h36m``).
        ways_out: the rest of the one-line message: how to generate elsewhere / use the files.
        expected: the generator's output files (relative), named first when present.
    """
    found = foreign_file(folder, generator, expected)
    if found is not None:
        raise ForeignFolderError(
            f"{found} exists and was not written by the synthetic generator (no "
            f"{Path(folder) / MARKER}), so nothing is generated over it: {ways_out}"
        )


def write_marker(
    folder: str | os.PathLike, generator: str, version: int, params: dict, complete: bool
) -> Path:
    """Write the manifest atomically (temp file in the same folder, fsync, ``os.replace``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MARKER
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps(
        {"generator": generator, "version": version, "params": params, "complete": complete},
        indent=1,
    )
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path
