"""Person-box sources for top-down inference.

A box source is any callable ``source(index, name, image) -> (N, 5)`` float array of person
boxes ``(x, y, w, h, score)`` in image pixels for frame ``index`` (``name``: the frame's file
name, or ``""`` for video frames; ``image``: ``(H, W, 3)`` RGB uint8). ``N`` may be 0.

Built in (``--boxes`` on the command line, see :func:`make_box_source`):
- ``full``: the whole frame is one box (no detector needed; fine for one roughly centred person).
- ``coco_json:PATH[,min_score=S][,map=FILE]``: COCO-format detections (a results list, or a
  dataset dict with ``annotations`` and optionally ``images``), matched to frames by image id
  (see :class:`CocoJsonBoxes`); ``min_score`` drops weaker boxes, ``map`` is a json
  ``{file_name: image_id}`` for folders not named like COCO.
- ``detector:MODULE:FUNCTION``: a hook for a real detector the user has installed with its
  weights; ``FUNCTION(image) -> (N, 5)`` (nothing is downloaded at run time).
- ``onnx:FILE[,option=value...]``: a person detector from a local ONNX file
  (:mod:`pose2d.onnx_detector`).
- ``track``: the previous frame's keypoint box, full frame to start
  (:mod:`pose2d.keypoint_boxes`; the 2D stage feeds the keypoints back).
"""

from __future__ import annotations

import importlib
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from callbacks.user_error import UserError

BoxSource = Callable[[int, str, np.ndarray], np.ndarray]
EMPTY = np.zeros((0, 5), dtype=np.float32)


class FullFrameBoxes:
    """The whole frame as the single person box, score 1."""

    def __call__(self, index: int, name: str, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        return np.array([[0.0, 0.0, w, h, 1.0]], dtype=np.float32)


class BoxFileError(UserError, ValueError):
    """A detection file that cannot be used for these frames (one line, exit status 2)."""


def coco_image_id(name: str) -> int | None:
    """The COCO ``image_id`` of a file named like COCO images (``%012d.jpg``: the number in the
    stem, e.g. ``000000397133.jpg`` → 397133), or None."""
    stem = Path(name).stem
    return int(stem) if stem.isdigit() else None


class CocoJsonBoxes:
    """Boxes from a COCO-format detection file.

    Frames are matched to ``image_id`` (never by position in an image folder):

    * by file name through ``images`` (a dataset dict with ``annotations``) or an explicit
      ``mapping`` file (a json ``{file_name: image_id}``, or a COCO dict with ``images``);
    * else, for a COCO results list (``[{image_id, category_id, bbox, score}]``, e.g. the official
      ``COCO_val2017_detections_AP_H_56_person.json``), by the COCO file name ``%012d.jpg``;
    * video frames (no file name): ``image_id == frame index + id_offset``.

    Only ``category_id == category_id`` (person) with ``score >= min_score`` are kept.

    Args:
        path: the detection json.
        min_score: drop boxes below this score.
        category_id: the person category.
        id_offset: image id of video frame 0.
        mapping: optional json file mapping image file names to image ids.
    """

    def __init__(
        self,
        path: str | Path,
        min_score: float = 0.0,
        category_id: int = 1,
        id_offset: int = 0,
        mapping: str | Path | None = None,
    ) -> None:
        self.path = path = Path(path)
        data = _read_json(path, "box file", "COCO-format detections JSON")
        dets = data["annotations"] if isinstance(data, dict) and "annotations" in data else data
        if not isinstance(dets, list):
            raise BoxFileError(
                f"{path}: expected a list of detections or a dict with 'annotations'"
            )
        self.id_by_name: dict[str, int] = {}
        if isinstance(data, dict) and "images" in data:
            self.id_by_name = _names_to_ids(data, path)
        if mapping is not None:
            self.id_by_name = _names_to_ids(_read_json(Path(mapping), "map", "json"), mapping)
        self.id_offset = id_offset
        by_id: dict[int, list[list[float]]] = defaultdict(list)
        for d in dets:
            if d.get("category_id", category_id) != category_id:
                continue
            score = float(d.get("score", 1.0))
            if score >= min_score:
                by_id[int(d["image_id"])].append([*map(float, d["bbox"]), score])
        # float64, as the COCO dataset reads them: crops equal the evaluation crops exactly
        self.by_id = {k: np.asarray(v, dtype=np.float64) for k, v in by_id.items()}

    def image_id(self, index: int, name: str) -> int | None:
        """The ``image_id`` of frame ``index`` named ``name`` (``""`` for video frames)."""
        if not name:
            return index + self.id_offset
        if self.id_by_name:
            return self.id_by_name.get(Path(name).name)
        return coco_image_id(name)

    def __call__(self, index: int, name: str, image: np.ndarray) -> np.ndarray:
        return self.by_id.get(self.image_id(index, name), EMPTY)

    def check_coverage(self, names: list[str]) -> int:
        """How many of the frames ``names`` (``""`` per video frame) have a box; none is an
        error naming the file and the way out, some is said in one printed line."""
        ids = [self.image_id(i, n) for i, n in enumerate(names)]
        matched = sum(i in self.by_id for i in ids)
        if matched == 0 and names:
            shown = ", ".join(str(k) for k in list(self.by_id)[:3]) or "none"
            raise BoxFileError(
                f"box file {self.path} matches none of the {len(names)} frames (its image ids: "
                f"{shown}; frame 0 is {names[0] or 'video frame 0'!r} -> id {ids[0]}); name "
                "images like COCO (%012d.jpg) or pass a mapping: --boxes "
                f"coco_json:{self.path},map=names_to_ids.json"
            )
        if matched < len(names):
            print(f"box file {self.path}: boxes for {matched} of {len(names)} frames; the "
                  f"other {len(names) - matched} have no person box (missing)")  # fmt: skip
        return matched


def _read_json(path: Path, what: str, kind: str):
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path} ({kind})")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BoxFileError(f"corrupt {what} {path}: {e}") from e


def _names_to_ids(data, path) -> dict[str, int]:
    if isinstance(data, dict) and isinstance(data.get("images"), list):
        return {Path(im["file_name"]).name: int(im["id"]) for im in data["images"]}
    if isinstance(data, dict) and all(isinstance(v, int) for v in data.values()):
        return {Path(k).name: int(v) for k, v in data.items()}
    raise BoxFileError(f"{path}: expected {{file_name: image_id}} or a COCO dict with 'images'")


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
        path, *options = rest.split(",")
        kwargs: dict = {}
        for opt in options:
            key, _, value = opt.partition("=")
            if key == "min_score" and value:
                kwargs["min_score"] = float(value)
            elif key == "map" and value:
                kwargs["mapping"] = value
            else:
                raise BoxFileError(
                    f"--boxes {spec}: unknown option {opt!r}; use coco_json:PATH[,min_score=S]"
                    "[,map=FILE]"
                )
        return CocoJsonBoxes(path, **kwargs)
    if kind == "onnx" and rest:  # a person detector from a local ONNX file
        from pose2d.onnx_detector import onnx_from_spec

        return onnx_from_spec(rest)
    if kind == "track":  # zero-install fallback: the previous frame's keypoint box
        from pose2d.keypoint_boxes import KeypointBoxes

        return KeypointBoxes()
    if kind == "detector" and ":" in rest:
        module, _, fn = rest.rpartition(":")
        try:
            hook = getattr(importlib.import_module(module), fn)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"--boxes {spec}: cannot import {module}.{fn}: {e}") from e
        return CallableBoxes(hook)
    raise ValueError(
        f"unknown box source {spec!r}; use full, track, onnx:FILE, coco_json:PATH or "
        "detector:MODULE:FUNCTION"
    )


def write_coco_detections(path: str | Path, boxes_per_frame: list[np.ndarray]) -> None:
    """Write ``(N_f, 5)`` boxes per frame as a COCO results list (``image_id`` = frame index)."""
    dets = [
        {"image_id": f, "category_id": 1, "bbox": [float(v) for v in b[:4]], "score": float(b[4])}
        for f, boxes in enumerate(boxes_per_frame)
        for b in np.asarray(boxes).reshape(-1, 5)
    ]
    Path(path).write_text(json.dumps(dets))
