"""Render a Human3.6M-style video set from (synthetic) 3D motion, for the paper's Table V path.

Reads ``data_3d_h36m.npz`` (VideoPose3D format, e.g. from ``datamodules.synthetic_h36m``),
projects every sequence through the 4 Human3.6M cameras (``datamodules.cameras``, with lens
distortion) and draws the person in the visual style of ``datamodules.synthetic_coco`` (the
synthetic-trained detector then works on it). The COCO face points the H36M skeleton lacks
(eyes, ears) are placed in 3D around the head in the body frame before projection, so they
swap sides correctly when the person turns away. Output (``--out``)::

    data_3d_h36m.npz                       the rendered subset of the motion (same format)
    <S>/Videos/<action>.<camera id>.mp4    the H36M naming; frames at ``scale`` × camera size
    <S>/Boxes/<action>.<camera id>.json    person boxes (COCO results, image_id = frame index)
    render.json                            scale, frame counts, source file

The boxes are the projected joints' extent plus a margin: the role a person detector plays for
real Human3.6M videos (VideoPose3D used Detectron boxes). Then detect and export 2D keypoints::

    python -m datamodules.render_h36m --source data/synthetic_h36m --out data/h36m_render
    python -m pose2d.export_keypoints --root data/h36m_render --detector 2d.ckpt --name ours
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from datamodules.cameras import H36M_CAMERA_IDS, h36m_camera, project_to_2d, world_to_camera
from datamodules.h36m_files import FILE_3D, write_3d_h36m
from datamodules.sequence_cache import load_pickled_npz
from datamodules.skeleton import COCO, H36M, H36M32_KEPT
from datamodules.synthetic_coco import draw_figure, textured_background


def coco_points_3d(pos17: np.ndarray) -> np.ndarray:
    """H36M-17 world poses ``(F, 17, 3)`` (z up) → COCO-17 3D points ``(F, 17, 3)``.

    Body joints map by name (ankle ← foot, nose ← neck_nose); eyes and ears are offsets from the
    H36M head (= mid-eyes, as ``coco_to_h36m`` reads it) along the body's left/forward axes.
    """
    h = H36M.index
    left = pos17[:, h("left_hip")] - pos17[:, h("right_hip")]
    up = pos17[:, h("head")] - pos17[:, h("thorax")]
    left /= np.linalg.norm(left, axis=-1, keepdims=True) + 1e-9
    up /= np.linalg.norm(up, axis=-1, keepdims=True) + 1e-9
    fwd = np.cross(up, left)
    fwd /= np.linalg.norm(fwd, axis=-1, keepdims=True) + 1e-9
    head = pos17[:, h("head")]
    same = {
        "nose": "neck_nose", "left_shoulder": "left_shoulder", "right_shoulder": "right_shoulder",
        "left_elbow": "left_elbow", "right_elbow": "right_elbow", "left_wrist": "left_wrist",
        "right_wrist": "right_wrist", "left_hip": "left_hip", "right_hip": "right_hip",
        "left_knee": "left_knee", "right_knee": "right_knee", "left_ankle": "left_foot",
        "right_ankle": "right_foot",
    }  # fmt: skip
    out = np.zeros(pos17.shape[:1] + (COCO.num_joints, 3), dtype=pos17.dtype)
    for c_name, h_name in same.items():
        out[:, COCO.index(c_name)] = pos17[:, h(h_name)]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        out[:, COCO.index(f"{side}_eye")] = head + sign * 0.032 * left + 0.02 * fwd
        out[:, COCO.index(f"{side}_ear")] = head + sign * 0.075 * left - 0.03 * fwd
    return out


def person_boxes(px: np.ndarray, size_wh: tuple[int, int], margin: float = 0.12) -> np.ndarray:
    """Joints ``(F, J, 2)`` px → boxes ``(F, 5)`` (x, y, w, h, 1): extent + ``margin`` × height,
    clipped to the frame."""
    lo, hi = px.min(1), px.max(1)
    pad = margin * (hi[:, 1:2] - lo[:, 1:2])
    lo = np.clip(lo - pad, 0, None)
    hi = np.minimum(hi + pad, np.array(size_wh, dtype=px.dtype) - 1)
    return np.concatenate([lo, hi - lo, np.ones((len(px), 1), px.dtype)], axis=1)


def render_sequence(
    px: np.ndarray, size_wh: tuple[int, int], rng: np.random.Generator
) -> list[np.ndarray]:
    """COCO joints ``(F, 17, 2)`` in px of the rendered frame → BGR frames over one background."""
    background = textured_background(rng, size_wh)
    n = COCO.index
    torso = np.linalg.norm(
        0.5 * (px[:, n("left_shoulder")] + px[:, n("right_shoulder")])
        - 0.5 * (px[:, n("left_hip")] + px[:, n("right_hip")]),
        axis=-1,
    )
    torso = np.full_like(torso, np.median(torso))  # constant limb width within a sequence
    frames = []
    for f in range(len(px)):
        img = background.copy()
        draw_figure(img, px[f], float(torso[f]), np.random.default_rng(0))  # fixed shading
        frames.append(img)
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not vw.isOpened():
        raise RuntimeError(f"cannot open a video writer for {path} (OpenCV without mp4v?)")
    for f in frames:
        vw.write(f)
    vw.release()


def render_h36m(
    source: str | Path,
    out: str | Path,
    scale: float = 0.32,
    subjects: tuple[str, ...] | None = None,
    actions: tuple[str, ...] | None = None,
    max_frames: int | None = None,
    fps: float = 50.0,
    seed: int = 0,
) -> Path:
    """Render every (subject, action) of ``source/data_3d_h36m.npz`` (optionally a subset, the
    first ``max_frames`` frames) × 4 cameras into ``out``; writes the subset's 3D file too."""
    source, out = Path(source), Path(out)
    print(
        f"render: unpickling {source / FILE_3D} (allow_pickle=True: the VideoPose3D format "
        "stores pickled dicts; only render files you trust)"
    )
    positions = load_pickled_npz(source / FILE_3D, "positions_3d")
    kept: dict = {}
    n_frames = 0
    for subject in sorted(positions, key=lambda s: int(s.lstrip("S"))):
        if subjects and subject not in subjects:
            continue
        for action in sorted(positions[subject]):
            if actions and action.split(" ")[0] not in actions:
                continue
            world32 = np.asarray(positions[subject][action], dtype=np.float64)[:max_frames]
            kept.setdefault(subject, {})[action] = world32.astype(np.float32)
            pts = coco_points_3d(world32[:, list(H36M32_KEPT)])
            for c, cam_id in enumerate(H36M_CAMERA_IDS):
                cam = h36m_camera(subject, c)
                size = (round(cam.res_w * scale), round(cam.res_h * scale))
                cam_pts = world_to_camera(pts, cam.orientation, cam.translation)
                px = project_to_2d(cam_pts, cam.intrinsic) * np.array(
                    [size[0] / cam.res_w, size[1] / cam.res_h]
                )
                rng = np.random.default_rng([seed, int(subject.lstrip("S")), c, len(kept)])
                frames = render_sequence(px, size, rng)
                stem = f"{action}.{cam_id}"
                write_video(out / subject / "Videos" / f"{stem}.mp4", frames, fps)
                boxes = person_boxes(px, size)
                dets = [
                    {"image_id": f, "category_id": 1, "bbox": b[:4].round(2).tolist(), "score": 1.0}
                    for f, b in enumerate(boxes)
                ]
                (out / subject / "Boxes").mkdir(parents=True, exist_ok=True)
                (out / subject / "Boxes" / f"{stem}.json").write_text(json.dumps(dets))
                n_frames += len(frames)
    if not kept:
        raise ValueError(f"nothing to render from {source / 'data_3d_h36m.npz'} with that subset")
    write_3d_h36m(out, kept)
    info = {"source": str(source), "scale": scale, "fps": fps, "frames_rendered": n_frames}
    (out / "render.json").write_text(json.dumps(info, indent=1))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m datamodules.render_h36m",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--source", default="data/synthetic_h36m", help="folder with data_3d_h36m.npz")
    p.add_argument("--out", default="data/h36m_render")
    p.add_argument("--scale", type=float, default=0.32, help="frame size / camera resolution")
    p.add_argument("--subjects", nargs="+", default=None)
    p.add_argument("--actions", nargs="+", default=None, help="action names (sub-actions kept)")
    p.add_argument("--max-frames", type=int, default=None, help="first N frames per sequence")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    out = render_h36m(
        a.source, a.out, a.scale, a.subjects and tuple(a.subjects),
        a.actions and tuple(a.actions), a.max_frames, seed=a.seed,
    )  # fmt: skip
    info = json.loads((out / "render.json").read_text())
    print(
        f"rendered {info['frames_rendered']} frames into {out} in {time.perf_counter() - t0:.1f} s"
    )


if __name__ == "__main__":
    main()
