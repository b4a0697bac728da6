"""Person-box sources for top-down inference.

A box source is any callable ``source(index, name, image) -> (N, 5)`` float array of person
boxes ``(x, y, w, h, score)`` in image pixels for frame ``index`` (``name``: the frame's file
name, or ``""`` for video frames; ``image``: ``(H, W, 3)`` RGB uint8). ``N`` may be 0.

Built in (``--boxes`` on the command line, see :func:`make_box_source`):
- ``full``: the whole frame is one box (no detector needed; fine for one roughly centred person).
- ``coco_json:PATH``: COCO-format detections (a results list, or a dataset dict with
  ``annotations`` and optionally ``images`` to match frames by file name).
- ``detector:MODULE:FUNCTION``: a hook for a real detector the user has installed with its
  weights; ``FUNCTION(image) -> (N, 5)`` (nothing is downloaded at run time).
"""

from __future__ import annotations

import importlib
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

BoxSource = Callable[[int, str, np.ndarray], np.ndarray]
EMPTY = np.zeros((0, 5), dtype=np.float32)


class FullFrameBoxes:
    """The whole frame as the single person box, score 1."""

    def __call__(self, index: int, name: str, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        return np.array([[0.0, 0.0, w, h, 1.0]], dtype=np.float32)


class CocoJsonBoxes:
    """Boxes from a COCO-format detection file.

    Frames are matched to ``image_id`` by file name when the file has an ``images`` list (image
    folders), otherwise ``image_id == frame index + id_offset`` (videos: frame 0 ↔ id 0 by
    default). Only ``category_id == category_id`` (person) with ``score >= min_score`` are kept.
    """

    def __init__(
        self, path: str | Path, min_score: float = 0.0, category_id: int = 1, id_offset: int = 0
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"box file not found: {path} (COCO-format detections JSON)")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"corrupt detections JSON {path}: {e}") from e
        dets = data["annotations"] if isinstance(data, dict) else data
        if not isinstance(dets, list):
            raise ValueError(f"{path}: expected a list of detections or a dict with 'annotations'")
        self.id_by_name = {}
        if isinstance(data, dict) and "images" in data:
            self.id_by_name = {Path(im["file_name"]).name: im["id"] for im in data["images"]}
        self.id_offset = id_offset
        by_id: dict[int, list[list[float]]] = defaultdict(list)
        for d in dets:
            if d.get("category_id", category_id) != category_id:
                continue
            score = float(d.get("score", 1.0))
            if score >= min_score:
                by_id[int(d["image_id"])].append([*map(float, d["bbox"]), score])
        self.by_id = {k: np.asarray(v, dtype=np.float32) for k, v in by_id.items()}

    def __call__(self, index: int, name: str, image: np.ndarray) -> np.ndarray:
        if self.id_by_name:
            image_id = self.id_by_name.get(Path(name).name)
        else:
            image_id = index + self.id_offset
        return self.by_id.get(image_id, EMPTY)


class CallableBoxes:
    """Adapter for a user detector ``fn(image (H, W, 3) RGB uint8) -> (N, 5)``."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]) -> None:
        self.fn = fn

    def __call__(self, index: int, name: str, image: np.ndarray) -> np.ndarray:
        boxes = np.asarray(self.fn(image), dtype=np.float32).reshape(-1, 5)
        return boxes


def make_box_source(spec: str) -> BoxSource:
    """Parse ``full`` | ``coco_json:PATH`` | ``detector:MODULE:FUNCTION``."""
    kind, _, rest = spec.partition(":")
    if kind == "full":
        return FullFrameBoxes()
    if kind == "coco_json" and rest:
        return CocoJsonBoxes(rest)
    if kind == "detector" and ":" in rest:
        module, _, fn = rest.rpartition(":")
        try:
            hook = getattr(importlib.import_module(module), fn)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"--boxes {spec}: cannot import {module}.{fn}: {e}") from e
        return CallableBoxes(hook)
    raise ValueError(
        f"unknown box source {spec!r}; use full, coco_json:PATH or detector:MODULE:FUNCTION"
    )


def write_coco_detections(path: str | Path, boxes_per_frame: list[np.ndarray]) -> None:
    """Write ``(N_f, 5)`` boxes per frame as a COCO results list (``image_id`` = frame index)."""
    dets = [
        {"image_id": f, "category_id": 1, "bbox": [float(v) for v in b[:4]], "score": float(b[4])}
        for f, boxes in enumerate(boxes_per_frame)
        for b in np.asarray(boxes).reshape(-1, 5)
    ]
    Path(path).write_text(json.dumps(dets))
