"""Run a batch person detector ahead of the frame loop, so it sees several frames per call.

A batch detector has ``detect(images: list[(H, W, 3) RGB uint8]) -> list[(N, 5)]`` (e.g.
:class:`pose2d.onnx_detector.OnnxPersonDetector`). :func:`prefetch_boxes` wraps the frame
sequence and the detector: iterating the wrapped frames detects ``batch_size`` frames at a time
and keeps their boxes until the box source is asked for them (frame by frame, as the 2D stage
does). Memory: at most ``batch_size`` frames are buffered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

Frame = tuple[int, str, np.ndarray]


class PrefetchedFrames:
    """The frames of ``frames``, with the boxes of each batch computed before it is yielded."""

    def __init__(
        self, frames, detect: Callable[[list[np.ndarray]], list[np.ndarray]], batch_size: int
    ):
        self.frames, self.detect, self.batch_size = frames, detect, max(1, batch_size)
        self.cache: dict[int, np.ndarray] = {}
        self.kind = getattr(frames, "kind", "video")
        self.fps = getattr(frames, "fps", 25.0)

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[Frame]:
        self.cache.clear()
        buf: list[Frame] = []
        for item in self.frames:
            buf.append(item)
            if len(buf) >= self.batch_size:
                yield from self._flush(buf)
        yield from self._flush(buf)

    def _flush(self, buf: list[Frame]) -> Iterator[Frame]:
        if not buf:
            return
        readable = [(f, im) for f, _, im in buf if im is not None]  # None: unreadable image
        boxes = self.detect([im for _, im in readable]) if readable else []
        self.cache.update({f: b for (f, _), b in zip(readable, boxes, strict=True)})
        items = list(buf)
        buf.clear()
        yield from items


class PrefetchedBoxes:
    """Box source reading the boxes :class:`PrefetchedFrames` computed (detects on a miss)."""

    def __init__(self, frames: PrefetchedFrames) -> None:
        self.frames = frames

    def __call__(self, index: int, name: str, image: np.ndarray) -> np.ndarray:
        boxes = self.frames.cache.pop(index, None)
        return self.frames.detect([image])[0] if boxes is None else boxes


def prefetch_boxes(frames, detector, batch_size: int | None = None):
    """``(frames, detector)`` → ``(wrapped frames, box source)``; unchanged for a detector
    without ``detect`` (a per-frame box source)."""
    if not hasattr(detector, "detect"):
        return frames, detector
    size = batch_size or getattr(detector, "batch_size", 1)
    wrapped = PrefetchedFrames(frames, detector.detect, size)
    return wrapped, PrefetchedBoxes(wrapped)
