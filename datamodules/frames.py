"""Frame readers for inference and keypoint export: a video file, a folder of images, or one image.

Every reader yields ``(index, name, image)`` with ``image`` ``(H, W, 3)`` RGB uint8 and can be
iterated more than once (the pipeline reads twice: once to infer, once to draw), so long videos
are never held in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from callbacks.user_error import BadInputError
from datamodules.image_io import CorruptImageError, read_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
OnUnreadable = Literal["raise", "missing"]


def read_rgb(path: str | Path) -> np.ndarray:
    """One image file → ``(H, W, 3)`` RGB uint8; ``ValueError`` naming a missing or corrupt file."""
    try:
        image = read_image(path)
    except CorruptImageError as e:
        raise BadInputError(str(e)) from e
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class ImageFrames:
    """Images sorted by file name (one image is a one-frame sequence).

    ``on_unreadable``: ``raise`` (a :class:`BadInputError` naming the file) or ``missing``: the
    frame is yielded with ``image=None`` and listed in :attr:`unreadable` (frame → reason), so
    one bad file in a folder is a missing frame, not the end of the run.
    """

    kind = "images"

    def __init__(
        self, paths: list[Path], fps: float = 25.0, on_unreadable: OnUnreadable = "raise"
    ) -> None:
        if not paths:
            raise FileNotFoundError("no images to read")
        self.paths = paths
        self.fps = fps
        self.on_unreadable = on_unreadable
        self.unreadable: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[tuple[int, str, np.ndarray | None]]:
        for i, p in enumerate(self.paths):
            try:
                image = read_rgb(p)
            except ValueError as e:
                if self.on_unreadable == "raise":
                    raise
                self.unreadable[i] = str(e)
                image = None
            yield i, p.name, image


class VideoFrames:
    """A video decoded with OpenCV; ``fps`` from the container (25 when it does not say)."""

    kind = "video"

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        size = path.stat().st_size
        cap = cv2.VideoCapture(str(path))
        try:  # checked up front: a bad video is one line before anything runs
            if size == 0 or not cap.isOpened():
                why = "empty file" if size == 0 else "missing codec or corrupt file"
                raise BadInputError(
                    f"cannot open video {path} ({why}); re-encode it (e.g. ffmpeg -i IN -c:v "
                    "libx264 OUT.mp4) or pass a folder of images"
                )
            if not cap.read()[0]:
                raise BadInputError(
                    f"video {path} has no decodable frames ({size} bytes); re-encode it or pass "
                    "a folder of images"
                )
            self.fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
            self._count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            cap.release()
        self.path = path

    def __len__(self) -> int:
        return self._count  # container estimate; iteration yields the true frames

    def __iter__(self) -> Iterator[tuple[int, str, np.ndarray]]:
        cap = cv2.VideoCapture(str(self.path))
        i = 0
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                yield i, "", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                i += 1
        finally:
            cap.release()
        if i == 0:
            raise BadInputError(f"video {self.path} has no decodable frames")


def open_frames(
    path: str | Path, fps: float = 25.0, on_unreadable: OnUnreadable = "raise"
) -> ImageFrames | VideoFrames:
    """Pick the reader from the path: a folder of images, an image file or a video file.
    ``on_unreadable`` applies to image folders (see :class:`ImageFrames`); a single image or a
    video that cannot be read is always an error."""
    path = Path(path)
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
        return ImageFrames(images, fps, on_unreadable)
    if not path.exists():
        raise FileNotFoundError(f"input not found: {path} (a video, an image or an image folder)")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFrames([path], fps)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoFrames(path)
    raise BadInputError(
        f"{path}: unknown input type {path.suffix!r}; give a video "
        f"({', '.join(VIDEO_SUFFIXES)}), an image or a folder of images"
    )
