"""Writers for inference results: ``.npz`` + ``.json`` arrays and PNG / MP4 / GIF pictures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from callbacks.atomic_io import atomic_write, atomic_write_text
from pose3d.video_writer import VideoWriter


def _jsonable(x: np.ndarray) -> Any:
    """Arrays → nested lists with NaN as ``null`` (JSON has no NaN)."""
    x = np.asarray(x)
    if x.dtype.kind == "f":
        return np.where(np.isfinite(x), np.round(x, 6), None).tolist()
    return x.tolist()


def write_results(
    out_dir: str | Path, stem: str, arrays: dict[str, np.ndarray], meta: dict
) -> tuple[Path, Path]:
    """``<stem>.npz`` (arrays, no pickles) and ``<stem>.json`` (meta + the same arrays)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clash = sorted(set(meta) & set(arrays))
    if clash:  # the json holds both: a meta entry would be silently replaced by the array
        raise ValueError(f"meta keys {clash} are also array names")
    npz = atomic_write(out_dir / f"{stem}.npz", lambda f: np.savez_compressed(f, **arrays))
    doc = dict(meta)
    doc.update({k: _jsonable(v) for k, v in arrays.items()})
    js = atomic_write_text(out_dir / f"{stem}.json", json.dumps(doc))
    return npz, js


class PictureWriter:
    """PNGs per frame (``every``-th frame) and, for videos, one MP4 (H.264 when imageio-ffmpeg
    is installed, else mp4v with a notice) or GIF of all frames (``pose3d.video_writer``)."""

    def __init__(
        self, out_dir: str | Path, video: str | None, fps: float, png_every: int = 1
    ) -> None:
        self.dir = Path(out_dir)
        (self.dir / "frames").mkdir(parents=True, exist_ok=True)
        self.video, self.fps, self.png_every = video, fps, png_every
        self.pngs: list[Path] = []
        self.video_path: Path | None = None
        self._video: VideoWriter | None = None
        if video in ("mp4", "gif"):
            self._video = VideoWriter(self.dir / f"result.{video}", fps, video)

    @property
    def codec(self) -> str | None:
        """``h264``, ``mp4v`` or ``gif`` once a frame was written, else ``None``."""
        return None if self._video is None else self._video.codec

    def add(self, index: int, image: np.ndarray) -> None:
        """Add frame ``index`` (``(H, W, 3)`` RGB uint8)."""
        if self.png_every > 0 and index % self.png_every == 0:
            p = self.dir / "frames" / f"{index:06d}.png"
            cv2.imwrite(str(p), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            self.pngs.append(p)
        if self._video is not None:
            self._video.add(image)

    def close(self) -> None:
        if self._video is not None:
            self.video_path = self._video.close()

    def abort(self) -> None:
        """Drop the unfinished video (PNGs already written stay)."""
        if self._video is not None:
            self._video.abort()
