"""A real person detector from a local ONNX file, run by onnxruntime (``--boxes onnx:<file>``).

Nothing is downloaded: the user brings the file. Two output conventions are read (``layout``):

- ``end2end`` — exports with the box decoding and NMS inside the graph (mmdeploy's
  ``end2end.onnx`` of RTMDet / YOLOX detectors, as used by RTMPose pipelines and rtmlib): two
  outputs ``dets (B, N, 5)`` = ``x1, y1, x2, y2, score`` in the network's input pixels and
  ``labels (B, N)`` = class index (person = 0 in COCO-80 order and in person-only models).
- ``yolox`` — the raw YOLOX head as the official YOLOX export writes it
  (``decode_in_inference=False``, the default of ``tools/export_onnx.py``): one output
  ``(B, A, 5 + C)`` = ``dx, dy, log w, log h, objectness, C class scores`` (objectness and
  class scores already sigmoid-activated) for the ``A = Σ (H/s)·(W/s)`` grid cells of strides
  8, 16, 32 in row-major order. Decoding: ``cx = (dx + gx)·s``, ``cy = (dy + gy)·s``,
  ``w = exp(log w)·s``, ``h = exp(log h)·s``, score = objectness × person class score.

``auto`` picks ``end2end`` for a graph with two outputs and ``yolox`` for one output whose last
axis is ≥ 6. Pre-processing is that of both families: the RGB frame is converted to BGR,
letterboxed (aspect kept, top-left aligned, padded with 114) to the input size, laid out as
``(B, 3, H, W)`` float32; ``normalize="rtmdet"`` subtracts mean (103.53, 116.28, 123.675) and
divides by std (57.375, 57.12, 58.395) per BGR channel (mmdet's RTMDet preprocessor),
``"none"`` feeds 0..255 values (YOLOX, official or mmdet). ``auto``: ``rtmdet`` for
``end2end``, ``none`` for ``yolox``. Boxes are then thresholded (``score_threshold``), kept for
the person class, suppressed by greedy NMS (``nms_iou``), scaled back by the letterbox ratio
and clipped to the frame: ``(N, 5)`` ``x, y, w, h, score`` in frame pixels.

A graph with a dynamic batch axis gets ``batch_size`` frames per call (see
:func:`pose2d.prefetch_boxes.prefetch_boxes`); a static batch of 1 gets one frame per call. The CUDA
provider is used when onnxruntime offers it (``onnxruntime-gpu``), else the CPU one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from callbacks.user_error import UserError

Layout = Literal["auto", "end2end", "yolox"]
Normalize = Literal["auto", "none", "rtmdet"]
RTMDET_MEAN = np.array([103.53, 116.28, 123.675], dtype=np.float32)  # BGR
RTMDET_STD = np.array([57.375, 57.12, 58.395], dtype=np.float32)
YOLOX_STRIDES = (8, 16, 32)
PAD_VALUE = 114
DEFAULT_INPUT_WH = (640, 640)


def letterbox(image: np.ndarray, size_wh: tuple[int, int], pad: int = PAD_VALUE):
    """``(h, w, 3)`` uint8 → ``(H, W, 3)`` uint8 canvas and the resize ratio.

    The image is resized by ``ratio = min(W / w, H / h)`` (aspect kept) and placed at the top-left
    corner; the rest is ``pad``. A point ``p`` of the canvas is ``p / ratio`` in the image.
    """
    w_in, h_in = size_wh
    h, w = image.shape[:2]
    ratio = min(w_in / w, h_in / h)
    nw, nh = max(1, round(w * ratio)), max(1, round(h * ratio))
    canvas = np.full((h_in, w_in, 3), pad, dtype=np.uint8)
    interp = cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR
    canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=interp)
    return canvas, ratio


def yolox_grid(size_wh: tuple[int, int], strides: tuple[int, ...] = YOLOX_STRIDES):
    """Grid cells of a YOLOX head for input ``(W, H)``: ``(A, 2)`` (gx, gy) and ``(A,)`` stride,
    strides in order, row-major (y outer, x inner) within each stride."""
    w, h = size_wh
    grids, steps = [], []
    for s in strides:
        gy, gx = np.meshgrid(np.arange(h // s), np.arange(w // s), indexing="ij")
        grids.append(np.stack([gx.ravel(), gy.ravel()], axis=1))
        steps.append(np.full(gx.size, s))
    return np.concatenate(grids).astype(np.float32), np.concatenate(steps).astype(np.float32)


def decode_yolox(raw: np.ndarray, size_wh: tuple[int, int], person_class: int = 0):
    """Raw head ``(A, 5 + C)`` → boxes ``(A, 4)`` x1 y1 x2 y2 (input px), person score ``(A,)``.

    Also returns the best class per cell ``(A,)`` (so other classes can be filtered out).
    """
    grid, stride = yolox_grid(size_wh)
    if len(raw) != len(grid):
        raise ValueError(
            f"YOLOX output has {len(raw)} cells, a {size_wh[0]}x{size_wh[1]} input with strides "
            f"{YOLOX_STRIDES} has {len(grid)}: set the detector input size"
        )
    cxcy = (raw[:, :2] + grid) * stride[:, None]
    wh = np.exp(np.clip(raw[:, 2:4], -20, 20)) * stride[:, None]
    boxes = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], axis=1)
    cls = raw[:, 5:]
    best = np.argmax(cls, axis=1)
    return boxes, raw[:, 4] * cls[:, person_class], best


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices kept, highest score first."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes_xyxy.T
    area = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        union = area[i] + area[rest] - inter
        overlap = np.where(union > 0, inter / np.where(union > 0, union, 1), 0)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def to_frame_boxes(
    boxes_xyxy: np.ndarray,
    scores: np.ndarray,
    ratio: float,
    frame_wh: tuple[int, int],
    score_threshold: float,
    nms_iou: float,
) -> np.ndarray:
    """Input-px person candidates → ``(N, 5)`` frame-px ``x, y, w, h, score``: threshold, NMS,
    undo the letterbox, clip to the frame, drop empty boxes; highest score first."""
    ok = np.isfinite(scores) & (scores >= score_threshold)
    boxes_xyxy, scores = boxes_xyxy[ok], scores[ok]
    keep = nms(boxes_xyxy, scores, nms_iou)
    b = boxes_xyxy[keep] / ratio
    w, h = frame_wh
    b = np.clip(b, 0, [w, h, w, h])
    out = np.concatenate([b[:, :2], b[:, 2:] - b[:, :2], scores[keep, None]], axis=1)
    return out[(out[:, 2] > 1) & (out[:, 3] > 1)].astype(np.float32)


def _ort():
    try:
        import onnxruntime
    except ImportError as e:
        raise UserError(
            "--boxes onnx: needs onnxruntime: pip install -e '.[deploy]' (onnxruntime-gpu for CUDA)"
        ) from e
    return onnxruntime


class OnnxPersonDetector:
    """Person boxes from an ONNX detector (a box source: ``detector(index, name, image)``).

    Args:
        path: the ``.onnx`` file (a local file; nothing is downloaded).
        score_threshold: keep boxes with person score at or above this.
        nms_iou: suppress a box that overlaps a higher-scoring one by more than this IoU.
        person_class: class index of "person" in the model's labels (0 in COCO-80 order).
        layout: output convention: auto, end2end (dets + labels) or yolox (raw head).
        normalize: input normalisation: auto, none (0..255) or rtmdet (mmdet mean/std, BGR).
        input_size: network input (W, H) when the graph's is dynamic (default 640 × 640).
        batch_size: frames per call when the graph's batch axis is dynamic.
        providers: onnxruntime execution providers (default: CUDA when available, then CPU).
    """

    def __init__(
        self,
        path: str | Path,
        score_threshold: float = 0.3,
        nms_iou: float = 0.45,
        person_class: int = 0,
        layout: Layout = "auto",
        normalize: Normalize = "auto",
        input_size: tuple[int, int] | None = None,
        batch_size: int = 8,
        providers: list[str] | None = None,
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"--boxes onnx:{path}: no such file (a local ONNX person detector)")
        ort = _ort()
        if providers is None:
            available = ort.get_available_providers()
            providers = [
                p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available
            ]
        try:
            self.session = ort.InferenceSession(str(path), providers=providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises several types for bad files
            raise UserError(f"--boxes onnx:{path}: not a readable ONNX model ({e})") from e
        self.path = path
        self.providers = self.session.get_providers()
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_dtype = np.float16 if "float16" in inp.type else np.float32
        shape = list(inp.shape)
        if len(shape) != 4:
            raise UserError(f"--boxes onnx:{path}: input {inp.name} is {shape}, not (B, 3, H, W)")
        self.batched = not isinstance(shape[0], int) or shape[0] < 1
        static_hw = all(isinstance(v, int) and v > 0 for v in shape[2:])
        self.input_size = (
            tuple(shape[3:1:-1]) if static_hw else tuple(input_size or DEFAULT_INPUT_WH)
        )
        outs = self.session.get_outputs()
        if layout == "auto":
            last = outs[0].shape[-1] if outs[0].shape else None
            if len(outs) >= 2:
                layout = "end2end"
            elif isinstance(last, int) and last >= 6:
                layout = "yolox"
            else:
                raise UserError(
                    f"--boxes onnx:{path}: cannot tell the output layout from "
                    f"{[(o.name, o.shape) for o in outs]}; expected dets (1, N, 5) + labels (1, N) "
                    "or a raw YOLOX head (1, A, 5 + C)"
                )
        self.layout = layout
        if normalize == "auto":
            normalize = "rtmdet" if layout == "end2end" else "none"
        self.normalize = normalize
        self.score_threshold, self.nms_iou = score_threshold, nms_iou
        self.person_class = person_class
        self.batch_size = batch_size if self.batched else 1

    def describe(self) -> str:
        """One line for the run summary."""
        w, h = self.input_size
        return (
            f"onnx {self.path.name} ({self.layout}, {w}x{h}, normalize={self.normalize}, "
            f"score>={self.score_threshold}, nms {self.nms_iou}, {self.providers[0]})"
        )

    def _prepare(self, image_rgb: np.ndarray) -> tuple[np.ndarray, float]:
        canvas, ratio = letterbox(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), self.input_size)
        x = canvas.astype(np.float32)
        if self.normalize == "rtmdet":  # in place: a 640 × 640 frame is 4.9 MB of float32
            x -= RTMDET_MEAN
            x *= 1.0 / RTMDET_STD
        return x.transpose(2, 0, 1), ratio

    def detect(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """RGB uint8 frames → one ``(N, 5)`` ``x, y, w, h, score`` array per frame."""
        out: list[np.ndarray] = []
        for s in range(0, len(images), self.batch_size):
            chunk = images[s : s + self.batch_size]
            prepared = [self._prepare(im) for im in chunk]
            x = np.stack([p[0] for p in prepared]).astype(self.input_dtype)
            res = self.session.run(None, {self.input_name: x})
            for i, (im, (_, ratio)) in enumerate(zip(chunk, prepared, strict=True)):
                out.append(self._boxes(res, i, ratio, (im.shape[1], im.shape[0])))
        return out

    def _boxes(self, res: list, i: int, ratio: float, frame_wh: tuple[int, int]) -> np.ndarray:
        if self.layout == "end2end":
            dets = np.asarray(res[0], dtype=np.float32)[i].reshape(-1, 5)
            labels = np.asarray(res[1])[i].reshape(-1)
            person = labels.astype(np.int64) == self.person_class
            boxes, scores = dets[person, :4], dets[person, 4]
        else:
            raw = np.asarray(res[0], dtype=np.float32)[i]
            boxes, scores, best = decode_yolox(raw, self.input_size, self.person_class)
            person = best == self.person_class  # a cell whose best class is another object
            boxes, scores = boxes[person], scores[person]
        return to_frame_boxes(boxes, scores, ratio, frame_wh, self.score_threshold, self.nms_iou)

    def __call__(self, index: int, name: str, image: np.ndarray) -> np.ndarray:
        return self.detect([image])[0]


SPEC_HELP = (
    "onnx:FILE[,score=S][,nms=IOU][,class=K][,layout=auto|end2end|yolox]"
    "[,normalize=auto|none|rtmdet][,size=WxH][,batch=N]"
)


def onnx_from_spec(rest: str) -> OnnxPersonDetector:
    """``FILE[,key=value...]`` (the part after ``onnx:`` of ``--boxes``) → the detector."""
    path, *options = rest.split(",")
    kw: dict = {}
    keys = {"score": ("score_threshold", float), "nms": ("nms_iou", float),
            "class": ("person_class", int), "layout": ("layout", str),
            "normalize": ("normalize", str), "batch": ("batch_size", int)}  # fmt: skip
    for opt in options:
        key, _, value = opt.partition("=")
        try:
            if key == "size":
                w, h = value.lower().split("x")
                kw["input_size"] = (int(w), int(h))
            elif key in keys and value:
                kw[keys[key][0]] = keys[key][1](value)
            else:
                raise ValueError
        except ValueError:
            raise UserError(f"--boxes onnx:{rest}: bad option {opt!r}; use {SPEC_HELP}") from None
    for key, allowed in (("layout", ("auto", "end2end", "yolox")),
                         ("normalize", ("auto", "none", "rtmdet"))):  # fmt: skip
        if key in kw and kw[key] not in allowed:
            raise UserError(f"--boxes onnx:{rest}: {key} must be one of {', '.join(allowed)}")
    return OnnxPersonDetector(path, **kw)
