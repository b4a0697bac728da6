"""Writers for inference results: ``.npz`` + ``.json`` arrays and PNG / MP4 / GIF pictures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np


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
    npz = out_dir / f"{stem}.npz"
    np.savez_compressed(npz, **arrays)
    js = out_dir / f"{stem}.json"
    doc = dict(meta)
    doc.update({k: _jsonable(v) for k, v in arrays.items()})
    js.write_text(json.dumps(doc))
    return npz, js


class PictureWriter:
    """PNGs per frame (``every``-th frame) and, for videos, one MP4 (mp4v) or GIF of all frames."""

    def __init__(
        self, out_dir: str | Path, video: str | None, fps: float, png_every: int = 1
    ) -> None:
        self.dir = Path(out_dir)
        (self.dir / "frames").mkdir(parents=True, exist_ok=True)
        self.video, self.fps, self.png_every = video, fps, png_every
        self._writer: cv2.VideoWriter | None = None
        self._gif: list = []
        self.pngs: list[Path] = []
        self.video_path: Path | None = None

    def add(self, index: int, image: np.ndarray) -> None:
        """Add frame ``index`` (``(H, W, 3)`` RGB uint8)."""
        if self.png_every > 0 and index % self.png_every == 0:
            p = self.dir / "frames" / f"{index:06d}.png"
            cv2.imwrite(str(p), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            self.pngs.append(p)
        if self.video == "mp4":
            h, w = image.shape[:2]
            if self._writer is None:
                self.video_path = self.dir / "result.mp4"
                fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                self._writer = cv2.VideoWriter(str(self.video_path), fourcc, self.fps, (w, h))
            self._writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        elif self.video == "gif":
            from PIL import Image

            self._gif.append(Image.fromarray(image))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
        if self._gif:
            self.video_path = self.dir / "result.gif"
            self._gif[0].save(
                self.video_path,
                save_all=True,
                append_images=self._gif[1:],
                duration=int(1000 / max(self.fps, 1)),
                loop=0,
            )
            self._gif = []
