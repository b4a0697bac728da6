"""Robust image reading: decode failures become a clear error naming the file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np


class CorruptImageError(OSError):
    """An image file is missing, unreadable or cannot be decoded."""


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as BGR ``uint8`` ``(H, W, 3)``; raise :class:`CorruptImageError` with the path.

    Reads the bytes first so a missing file and an undecodable one give distinct messages.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise CorruptImageError(f"cannot read image {path}: {e}") from e
    if data.size == 0:
        raise CorruptImageError(f"empty image file {path}")
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise CorruptImageError(f"cannot decode image {path} ({data.size} bytes)")
    return img


def verify_images(paths: Iterable[str | Path]) -> list[tuple[str, str]]:
    """Try to decode every path; return ``(path, reason)`` for each bad one (empty when all ok)."""
    bad = []
    for p in paths:
        try:
            read_image(p)
        except CorruptImageError as e:
            bad.append((str(p), str(e)))
    return bad
