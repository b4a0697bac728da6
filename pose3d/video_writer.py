"""Result animations people can open: H.264 MP4 (browsers, slide decks) or GIF.

MP4 goes through ``imageio-ffmpeg`` (the optional ``video`` extra; its wheel ships an ffmpeg
binary) as H.264 (``libx264``, ``yuv420p``, ``+faststart``). Without it the file is written
with OpenCV's ``mp4v`` (MPEG-4 Part 2, which many browsers do not play), after a one-line
notice. GIF is written with Pillow. Every file is written under a temporary name in the same
folder and moved into place on :meth:`VideoWriter.close`, so a failed run leaves no half file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

VideoKind = Literal["mp4", "gif"]
H264_HINT = "pip install -e '.[video]' (imageio-ffmpeg) for H.264"


def _even(image: np.ndarray) -> np.ndarray:
    """Pad to even width and height (yuv420p needs both even) with black."""
    h, w = image.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return image
    return np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)))


class VideoWriter:
    """Frames (``(H, W, 3)`` RGB uint8, the first frame's size) → ``path``.

    Args:
        path: the final file (``.mp4`` or ``.gif``).
        fps: frames per second of the animation.
        kind: mp4 (H.264 when imageio-ffmpeg is installed, else OpenCV mp4v) or gif.
        notice: where the one-line fallback notice goes.
    """

    def __init__(
        self, path: str | Path, fps: float, kind: VideoKind = "mp4",
        notice: Callable[[str], None] = print,
    ) -> None:  # fmt: skip
        self.path, self.fps, self.kind, self.notice = Path(path), float(fps), kind, notice
        self.tmp = self.path.with_name(f".{self.path.stem}.tmp{self.path.suffix}")
        self.codec: str | None = None
        self._size: tuple[int, int] | None = None
        self._h264 = None
        self._cv: cv2.VideoWriter | None = None
        self._gif: list = []

    def _open(self, w: int, h: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.kind == "gif":
            self.codec = "gif"
            return
        try:
            import imageio_ffmpeg
        except ImportError:
            imageio_ffmpeg = None
        if imageio_ffmpeg is not None:
            self._h264 = imageio_ffmpeg.write_frames(
                str(self.tmp), (w, h), fps=self.fps, codec="libx264", pix_fmt_out="yuv420p",
                macro_block_size=2, output_params=["-movflags", "+faststart"],
            )  # fmt: skip
            self._h264.send(None)
            self.codec = "h264"
            return
        self.notice(
            f"note: {self.path.name} written as mp4v (may not play in browsers); {H264_HINT}"
        )
        self._cv = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        if not self._cv.isOpened():
            raise RuntimeError(f"cannot open a video writer for {self.path} (OpenCV without mp4v)")
        self.codec = "mp4v"

    def add(self, image: np.ndarray) -> None:
        """Append one frame; later frames of another size are resized to the first's."""
        image = _even(np.ascontiguousarray(image, dtype=np.uint8))
        if self._size is None:
            self._size = (image.shape[1], image.shape[0])
            self._open(*self._size)
        elif (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size)
        if self._h264 is not None:
            self._h264.send(np.ascontiguousarray(image))
        elif self._cv is not None:
            self._cv.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        else:
            from PIL import Image

            self._gif.append(Image.fromarray(image))

    def close(self) -> Path | None:
        """Finish the file and move it into place; ``None`` when no frame was added."""
        if self._size is None:
            return None
        if self._h264 is not None:
            self._h264.close()
        elif self._cv is not None:
            self._cv.release()
        else:
            self._gif[0].save(self.tmp, format="GIF", save_all=True, append_images=self._gif[1:],
                              duration=int(round(1000 / max(self.fps, 1))), loop=0)  # fmt: skip
            self._gif = []
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file (a failed run leaves nothing behind)."""
        for w in (self._h264,):
            if w is not None:
                try:
                    w.close()
                except Exception:  # noqa: BLE001 - the file is discarded anyway
                    pass
        if self._cv is not None:
            self._cv.release()
        self.tmp.unlink(missing_ok=True)
