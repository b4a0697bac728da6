"""Our detector's 2D keypoints as a lifter training source (the paper's Table V path).

Runs the top-down detector over a Human3.6M-style video set and writes a VideoPose3D-format
``data_2d_h36m_<name>.npz`` that the 3D data module reads as ``--data.keypoints <name>``::

    <root>/<S>/Videos/<action>.<camera id>.mp4    (the official H36M naming; also .avi/.mkv)
    <root>/<S>/Boxes/<action>.<camera id>.json    optional person boxes (COCO results list,
                                                  image_id = frame index); else the full frame

Written keys: ``positions_2d`` subject → action → 4 × ``(F, 17, 2)`` float32 pixels of the
camera's native resolution (videos smaller than the camera, e.g. rendered at a scale, are
rescaled), H36M-17 order via ``coco_to_h36m``; ``confidences`` with the same nesting,
``(F, 17)``; ``metadata`` {layout_name 'h36m', num_joints 17, keypoints_symmetry}. Frames with
no person are linearly interpolated (the format has no gaps). Official names ``TakingPhoto`` /
``WalkingDog`` become ``Photo`` / ``WalkDog`` and ``_ALL`` videos are skipped, as VideoPose3D
does.

    python -m pose2d.export_keypoints --root data/h36m_render --detector 2d.ckpt --name ours
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from callbacks.checkpoint_check import DETECTOR_KINDS, require_checkpoint
from callbacks.user_error import exit_code
from datamodules.cameras import H36M_CAMERA_IDS, h36m_camera
from datamodules.frames import VIDEO_SUFFIXES, VideoFrames
from datamodules.h36m_files import write_2d_h36m
from datamodules.skeleton import COCO, coco_to_h36m
from pose2d.boxes import CocoJsonBoxes, FullFrameBoxes
from pose2d.checkpoint import (
    add_decode_argument,
    add_input_size_argument,
    detector_decode_method,
    detector_input_size,
    load_detector,
)
from pose2d.missing import fill_missing
from pose2d.topdown import TopDownEstimator, estimate_2d
from pose2d.tracking import MainPersonTracker

RENAMES = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}


def find_videos(root: str | Path) -> dict[str, dict[str, list[Path | None]]]:
    """``subject → action → 4 video paths`` (camera order of ``H36M_CAMERA_IDS``)."""
    root = Path(root)
    found: dict[str, dict[str, list[Path | None]]] = {}
    for video in sorted(root.glob("S*/Videos/*")):
        if video.suffix.lower() not in VIDEO_SUFFIXES or "_ALL" in video.name:
            continue
        action, _, cam_id = video.stem.rpartition(".")
        if cam_id not in H36M_CAMERA_IDS:
            continue
        head, *rest = action.split(" ")
        action = " ".join([RENAMES.get(head, head), *rest])
        subject = video.parent.parent.name
        cams = found.setdefault(subject, {}).setdefault(action, [None] * 4)
        cams[H36M_CAMERA_IDS.index(cam_id)] = video
    if not found:
        raise FileNotFoundError(
            f"no videos under {root}/S*/Videos/ named '<action>.<camera id>.mp4' "
            f"(camera ids {', '.join(H36M_CAMERA_IDS)})"
        )
    for subject, actions in found.items():
        for action, cams in actions.items():
            if None in cams:
                lacking = [H36M_CAMERA_IDS[c] for c, v in enumerate(cams) if v is None]
                raise FileNotFoundError(
                    f"{root}/{subject}/Videos: {action!r} lacks cameras {', '.join(lacking)}"
                )
    return found


def detect_video(
    video: Path, estimator: TopDownEstimator, boxes: str, subject: str, camera: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """One video → H36M-17 pixels ``(F, 17, 2)`` at the camera's resolution, scores ``(F, 17)``,
    number of frames with no person."""
    box_file = video.parent.parent / "Boxes" / f"{video.stem}.json"
    source = CocoJsonBoxes(box_file) if boxes == "auto" and box_file.is_file() else FullFrameBoxes()
    kpts, _, sizes = estimate_2d(VideoFrames(video), estimator, source, MainPersonTracker())
    missing = ~np.isfinite(kpts).all(axis=(1, 2))
    kpts = fill_missing(kpts, missing)
    if missing.all():
        raise ValueError(f"{video}: no person found in any frame")
    cam = h36m_camera(subject, camera)
    kpts[..., :2] *= np.array([cam.res_w, cam.res_h]) / sizes[:, None, :]
    h36m = coco_to_h36m(kpts)
    return h36m[..., :2].astype(np.float32), h36m[..., 2].astype(np.float32), int(missing.sum())


def export_keypoints(
    root: str | Path,
    estimator: TopDownEstimator,
    name: str,
    out: str | Path | None = None,
    boxes: str = "auto",
) -> Path:
    """Detect every video under ``root`` and write ``data_2d_h36m_<name>.npz`` (into ``out``,
    default ``root``)."""
    videos = find_videos(root)
    positions: dict = {}
    confidences: dict = {}
    for subject, actions in videos.items():
        for action, cams in actions.items():
            per_cam = []
            for c, video in enumerate(cams):
                xy, conf, n_missing = detect_video(video, estimator, boxes, subject, c)
                if n_missing:
                    print(f"  {video}: {n_missing} frames without a person (interpolated)")
                per_cam.append((xy, conf))
            positions.setdefault(subject, {})[action] = [p for p, _ in per_cam]
            confidences.setdefault(subject, {})[action] = [q for _, q in per_cam]
    return write_2d_h36m(out or root, name, positions, confidences)


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(
        prog="python -m pose2d.export_keypoints",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--root", required=True, help="Human3.6M-style folder (S*/Videos/*.mp4)")
    p.add_argument("--detector", required=True, help="2D checkpoint")
    p.add_argument("--name", default="ours", help="writes data_2d_h36m_<name>.npz")
    p.add_argument("--out", default=None, help="output folder (default: --root)")
    p.add_argument(
        "--boxes",
        default="auto",
        choices=("auto", "full"),
        help="auto: S*/Boxes/<video>.json when present, else the full frame",
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add_input_size_argument(p)
    add_decode_argument(p)
    p.add_argument("--no-flip", action="store_true", help="no flip test")
    p.add_argument("--batch-size", type=int, default=64)
    a = p.parse_args(argv)
    require_checkpoint(a.detector, DETECTOR_KINDS, "--detector")
    model = load_detector(a.detector)
    size = a.input_size or detector_input_size(a.detector)
    decode = a.decode or detector_decode_method(a.detector)
    est = TopDownEstimator(model, tuple(size), not a.no_flip, decode, COCO, a.device, a.batch_size)
    t0 = time.perf_counter()
    path = export_keypoints(a.root, est, a.name, a.out, a.boxes)
    print(f"wrote {path} in {time.perf_counter() - t0:.1f} s")
    return path


if __name__ == "__main__":
    sys.exit(exit_code(main))
