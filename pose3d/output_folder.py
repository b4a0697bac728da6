"""The ``--out`` folder of ``pose3d.infer``: what our previous run wrote goes, nothing else does.

Every run records the files it is about to write in ``<out>/.infer_outputs.json`` (atomically,
before writing them, so a run that fails half-way is cleaned up too). The next run into the
same folder first removes exactly those files, so no stale frame of a longer earlier clip sits
next to the new ones; files it did not write are left alone. A folder without that record that
already holds a file of ours by name (``results.json``, ``frames/000000.png``...) is someone
else's: the run stops before anything is computed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from callbacks.user_error import UserError

MARKER = ".infer_outputs.json"
OUTPUT_NAMES = ("results.npz", "results.json", "result.mp4", "result.gif")


def _recorded(out: Path) -> list[Path] | None:
    try:
        data = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        return None
    # only plain relative names inside the folder: a damaged record must not reach elsewhere
    return [out / f for f in files if isinstance(f, str) and ".." not in Path(f).parts]


def check_out_folder(out: str | os.PathLike) -> None:
    """Raise :class:`UserError` when ``out`` holds one of our file names that no earlier run of
    ours recorded (it would be overwritten)."""
    out = Path(out)
    if not out.is_dir() or _recorded(out) is not None:
        return
    taken = [out / n for n in OUTPUT_NAMES if (out / n).exists()]
    frames = out / "frames"
    if frames.is_dir():
        taken += sorted(frames.glob("*.png"))[:1]
    if taken:
        raise UserError(
            f"{taken[0]} exists and no record of an earlier pose3d.infer run ({out / MARKER}) "
            "says it is ours, so it is not overwritten: choose an empty or new --out (or remove "
            "it)"
        )


def clear_previous(out: str | os.PathLike) -> list[Path]:
    """Remove the files our previous run recorded in ``out`` (and ``frames/`` if left empty)."""
    out = Path(out)
    removed = []
    for path in _recorded(out) or []:
        if path.is_file():
            path.unlink()
            removed.append(path)
    frames = out / "frames"
    if frames.is_dir() and not any(frames.iterdir()):
        frames.rmdir()
    (out / MARKER).unlink(missing_ok=True)
    return removed


def record_outputs(out: str | os.PathLike, files: Iterable[str | os.PathLike | None]) -> Path:
    """Write the record of this run's files (relative to ``out``; they may not exist yet)."""
    out = Path(out)
    names = sorted({Path(f).resolve().relative_to(out.resolve()).as_posix() for f in files if f})
    path = out / MARKER
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"writer": "pose3d.infer", "files": names}, indent=1))
    os.replace(tmp, path)
    return path
