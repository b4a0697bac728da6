"""ONNX person detector (``--boxes onnx:<file>``): tiny models built in the test in both supported
output layouts (end-to-end ``dets`` + ``labels``, raw YOLOX head); thresholds, NMS, the person
class, letterbox and the rescale back to frame pixels."""

from __future__ import annotations

import numpy as np
import pytest

from callbacks.user_error import UserError
from pose2d.onnx_detector import (
    OnnxPersonDetector,
    decode_yolox,
    letterbox,
    nms,
    to_frame_boxes,
    yolox_grid,
)
from pose2d.prefetch_boxes import prefetch_boxes


# --- pure parts (numpy only) ----------------------------------------------------------------
def test_letterbox_keeps_aspect_top_left_and_pads():
    img = np.full((60, 120, 3), 200, np.uint8)  # h 60, w 120
    canvas, ratio = letterbox(img, (64, 64))
    assert canvas.shape == (64, 64, 3) and ratio == pytest.approx(64 / 120)
    assert (canvas[:32] == 200).all() and (canvas[33:] == 114).all()  # 60 · 0.533 = 32 rows


def test_nms_and_frame_boxes():
    b = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    s = np.array([0.9, 0.8, 0.7, 0.1])
    assert nms(b, s, 0.5).tolist() == [0, 2]  # box 1 (IoU 0.82) and 3 (IoU 1) suppressed
    assert nms(b, s, 0.9).tolist() == [0, 1, 2]
    # Threshold 0.5 drops box 3 before NMS; ratio 0.5 doubles; clipped to a 50 × 40 frame box 2
    # becomes (40, 40, 10, 0): empty, dropped.
    out = to_frame_boxes(b, s, 0.5, (50, 40), 0.5, 0.5)
    np.testing.assert_allclose(out, [[0, 0, 20, 20, 0.9]], atol=1e-6)


def test_yolox_grid_order_and_decode():
    grid, stride = yolox_grid((64, 32))  # W 64, H 32: 8×4 + 4×2 + 2×1 cells
    assert len(grid) == 32 + 8 + 2 and stride.tolist() == [8] * 32 + [16] * 8 + [32] * 2
    assert grid[1].tolist() == [1, 0] and grid[8].tolist() == [0, 1]  # x inner, y outer
    raw = np.zeros((42, 7), np.float32)  # C = 2
    raw[9] = [0.5, 0.5, np.log(2), np.log(3), 0.9, 0.8, 0.1]  # cell (1, 1), stride 8
    boxes, score, best = decode_yolox(raw, (64, 32))
    np.testing.assert_allclose(boxes[9], [12 - 8, 12 - 12, 12 + 8, 12 + 12])
    assert score[9] == pytest.approx(0.72) and best[9] == 0
    with pytest.raises(ValueError, match="input size"):
        decode_yolox(raw[:-1], (64, 32))


# --- tiny ONNX models --------------------------------------------------------------------------
try:
    import onnx
    import onnxruntime  # noqa: F401
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # the deploy extra is optional: only the numpy parts above run
    onnx = None
needs_onnx = pytest.mark.skipif(onnx is None, reason="needs onnx + onnxruntime (.[deploy])")


def _save(tmp_path, name, nodes, inputs, outputs, inits):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def _tiled(const: np.ndarray, out_name: str, name: str) -> tuple[list, list]:
    """Nodes giving ``const`` (1, ...) repeated over the input's batch axis (a graph whose outputs
    follow the batch size, as a real detector's do)."""
    k = const.ndim
    inits = [
        numpy_helper.from_array(const, f"{name}_c"),
        numpy_helper.from_array(np.array([0], np.int64), f"{name}_s"),
        numpy_helper.from_array(np.array([1], np.int64), f"{name}_e"),
        numpy_helper.from_array(np.ones(k - 1, np.int64), f"{name}_ones"),
    ]
    nodes = [
        helper.make_node("Shape", ["input"], [f"{name}_shape"]),
        helper.make_node("Slice", [f"{name}_shape", f"{name}_s", f"{name}_e"], [f"{name}_b"]),
        helper.make_node("Concat", [f"{name}_b", f"{name}_ones"], [f"{name}_reps"], axis=0),
        helper.make_node("Tile", [f"{name}_c", f"{name}_reps"], [out_name]),
    ]
    return nodes, inits


def end2end_model(tmp_path, batch="batch", size=(640, 640)):
    w, h = size
    dets = np.array(
        [[[100, 50, 300, 450, 0.9],  # person
          [105, 55, 305, 455, 0.8],  # the same person again: NMS
          [400, 100, 500, 300, 0.2],  # person below the threshold
          [350, 300, 600, 500, 0.95],  # a car (label 2)
          [500, 200, 560, 330, 0.6]]],  # a second person
        np.float32,
    )  # fmt: skip
    dets[..., :4] *= np.array([w, h, w, h], np.float32) / 640  # the same layout at any size
    labels = np.array([[0, 0, 0, 2, 0]], np.int64)
    n1, i1 = _tiled(dets, "dets", "d")
    n2, i2 = _tiled(labels, "labels", "l")
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, h, w])
    outs = [
        helper.make_tensor_value_info("dets", TensorProto.FLOAT, [batch, 5, 5]),
        helper.make_tensor_value_info("labels", TensorProto.INT64, [batch, 5]),
    ]
    return _save(tmp_path, "e2e.onnx", n1 + n2, [inp], outs, i1 + i2)


def yolox_model(tmp_path, size=(64, 64), classes=2):
    grid, stride = yolox_grid(size)
    raw = np.zeros((1, len(grid), 5 + classes), np.float32)
    raw[0, :, 2:4] = np.log(0.5)
    # Cell (3, 2) at stride 8: centre (28, 20), 16 × 24 input px, score 0.9 × 0.9.
    k = 2 * (size[0] // 8) + 3
    raw[0, k] = [0.5, 0.5, np.log(2), np.log(3), 0.9, 0.9, 0.05]
    raw[0, k + 1] = [-0.5, 0.5, np.log(2), np.log(3), 0.8, 0.85, 0.05]  # same box: NMS
    raw[0, k + 3] = [0.5, 0.5, np.log(2), np.log(2), 0.95, 0.1, 0.9]  # another class
    m = len(grid) - 1  # last stride-32 cell (1, 1): centre (48, 48), 32 × 32, score 0.5
    raw[0, m] = [0.5, 0.5, 0.0, 0.0, 0.5, 1.0, 0.0]
    nodes, inits = _tiled(raw, "output", "o")
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size[1], size[0]])
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, len(grid), 5 + classes])
    return _save(tmp_path, "yolox.onnx", nodes, [inp], [out], inits)


@needs_onnx
def test_end2end_layout_threshold_class_nms_rescale(tmp_path):
    det = OnnxPersonDetector(end2end_model(tmp_path), score_threshold=0.3)
    assert det.layout == "end2end" and det.normalize == "rtmdet" and det.batched
    assert det.input_size == (640, 640) and "CPUExecutionProvider" in det.providers
    frame = np.zeros((720, 1280, 3), np.uint8)  # letterbox ratio 0.5: input px × 2
    boxes = det(0, "", frame)  # the first box (y2 = 900) is clipped at the frame's 720
    np.testing.assert_allclose(
        boxes, [[200, 100, 400, 620, 0.9], [1000, 400, 120, 260, 0.6]], rtol=1e-5
    )
    # A 320 × 180 frame (ratio 2) halves everything, clipped at y = 180.
    small = det(0, "", np.zeros((180, 320, 3), np.uint8))
    np.testing.assert_allclose(small[0], [50, 25, 100, 180 - 25, 0.9], rtol=1e-5)
    assert len(OnnxPersonDetector(end2end_model(tmp_path), score_threshold=0.1)(0, "", frame)) == 3
    assert len(OnnxPersonDetector(end2end_model(tmp_path), nms_iou=0.99)(0, "", frame)) == 3


@needs_onnx
def test_end2end_batched_frames_of_different_sizes(tmp_path):
    det = OnnxPersonDetector(end2end_model(tmp_path), batch_size=4)
    frames = [np.zeros((720, 1280, 3), np.uint8), np.zeros((640, 640, 3), np.uint8)] * 3
    out = det.detect(frames)
    assert len(out) == 6 and det.batch_size == 4
    np.testing.assert_allclose(out[0][0, :4], [200, 100, 400, 620], rtol=1e-5)
    np.testing.assert_allclose(out[1][0, :4], [100, 50, 200, 400], rtol=1e-5)
    # Through the prefetching wrapper: same boxes, detected four frames per call.
    seq = [(i, "", im) for i, im in enumerate(frames)]
    calls = []
    detect = det.detect
    det.detect = lambda ims: calls.append(len(ims)) or detect(ims)
    wrapped, source = prefetch_boxes(seq, det)
    got = [source(i, n, im) for i, n, im in wrapped]
    assert calls == [4, 2]
    for a, b in zip(got, out, strict=True):
        np.testing.assert_allclose(a, b)


@needs_onnx
def test_static_batch_of_one_runs_frame_by_frame(tmp_path):
    det = OnnxPersonDetector(end2end_model(tmp_path, batch=1), batch_size=8)
    assert not det.batched and det.batch_size == 1
    assert [len(b) for b in det.detect([np.zeros((640, 640, 3), np.uint8)] * 3)] == [2, 2, 2]


@needs_onnx
def test_yolox_layout_decoding(tmp_path):
    det = OnnxPersonDetector(yolox_model(tmp_path), score_threshold=0.3)
    assert det.layout == "yolox" and det.normalize == "none" and det.input_size == (64, 64)
    boxes = det(0, "", np.zeros((96, 128, 3), np.uint8))  # ratio 0.5
    want = [[2 * (28 - 8), 2 * (20 - 12), 32, 48, 0.81], [2 * 32, 2 * 32, 64, 96 - 64, 0.5]]
    np.testing.assert_allclose(boxes, want, rtol=1e-5)
    assert (
        len(
            OnnxPersonDetector(yolox_model(tmp_path), score_threshold=0.6)(
                0, "", np.zeros((96, 128, 3), np.uint8)
            )
        )
        == 1
    )


@needs_onnx
def test_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="no such file"):
        OnnxPersonDetector(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(UserError, match="not a readable ONNX model"):
        OnnxPersonDetector(bad)
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(UserError, match=r"pip install -e '\.\[deploy\]'"):
        OnnxPersonDetector(end2end_model(tmp_path))


@needs_onnx
def test_spec_options(tmp_path):
    from pose2d.onnx_detector import onnx_from_spec

    path = yolox_model(tmp_path)
    det = onnx_from_spec(f"{path},score=0.6,nms=0.3,class=0,normalize=rtmdet,batch=2")
    assert (det.score_threshold, det.nms_iou, det.normalize, det.layout) == (
        0.6,
        0.3,
        "rtmdet",
        "yolox",
    )
    with pytest.raises(UserError, match="bad option 'scor=1'"):
        onnx_from_spec(f"{path},scor=1")
    with pytest.raises(UserError, match="layout must be one of"):
        onnx_from_spec(f"{path},layout=ssd")
