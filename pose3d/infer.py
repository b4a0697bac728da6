"""Image or video → per-frame 2D keypoints (HRNet, top-down) → 3D pose (lifter) → files + pictures.

    python -m pose3d.infer --input clip.mp4 --detector 2d.ckpt --lifter 3d.ckpt --out out/ \
        [--boxes full|track|onnx:FILE|coco_json:PATH|detector:MODULE:FUNCTION] \
        [--people main|all] [--fps F] [--no-resample] [--view side|camera|top] [--device cpu|cuda]

Steps: person boxes per frame → main person (IoU tracking, ``pose2d.tracking``; every person
with ``--people all``, ``pose3d.people_pipeline``) → batched
top-down 2D (COCO-17 + scores) → missing frames interpolated (or NaN) → COCO → H36M-17 →
screen-normalised with the frame size → resampled to the lifter's training frame rate
(``pose3d.resample``) → one edge-padded T-frame window per frame → lifter (centre frame)
→ ``results.npz`` / ``results.json`` and pictures (2D on the frame | 3D).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from callbacks.checkpoint_check import DETECTOR_KINDS, LIFTER_KINDS, require_checkpoint
from callbacks.user_error import exit_code
from datamodules.cameras import normalize_screen_coordinates
from datamodules.frames import open_frames
from datamodules.skeleton import COCO, H36M, coco_to_h36m
from pose2d.boxes import BoxSource, FullFrameBoxes, make_box_source
from pose2d.checkpoint import (
    add_decode_argument,
    add_input_size_argument,
    detector_decode_method,
    detector_input_size,
)
from pose2d.missing import fill_missing
from pose2d.people_topdown import estimate_2d_people, first_person
from pose2d.prefetch_boxes import prefetch_boxes
from pose2d.topdown import TopDownEstimator, estimate_2d
from pose2d.tracking import MainPersonTracker
from pose3d.draw import VIEWS, SideBySide
from pose3d.output_folder import check_out_folder, clear_previous, record_outputs
from pose3d.outputs import PictureWriter, write_results
from pose3d.resample import lift_at_rate, lifter_frame_rate
from pose3d.run_summary import run_summary

# With --boxes full every frame gets the whole image as the person box, so a frame without a
# person still yields keypoints, with low heatmap peaks. 0.1 is half the official per-joint
# visibility threshold (in_vis_thre 0.2, used in rescoring): below it, most joints count as
# not seen.
FULL_FRAME_MIN_SCORE = 0.1


@dataclass
class PipelineResult:
    keypoints_2d: np.ndarray  # (F, 17, 3) COCO-17 image px + score
    keypoints_2d_h36m: np.ndarray  # (F, 17, 3) H36M-17 image px + score (the lifter's input)
    pose_3d: np.ndarray  # (F, 17, 3) H36M-17 camera-space root-relative metres
    missing: np.ndarray  # (F,) bool: nobody found in that frame
    boxes: np.ndarray  # (F, 5) tracked box x, y, w, h, score (NaN when missing)
    frame_size: np.ndarray  # (F, 2) width, height
    timings: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    low_score: np.ndarray | None = None  # (F,) bool: missing because the score was too low
    tracks: dict = field(default_factory=dict)  # --people all: track_* arrays + main_track

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "keypoints_2d": self.keypoints_2d,
            "keypoints_2d_h36m": self.keypoints_2d_h36m,
            "pose_3d": self.pose_3d,
            "missing": self.missing,
            "boxes": self.boxes,
            "frame_size": self.frame_size,
            **self.tracks,
        }


def lifter_frames(lifter: nn.Module, default: int | None = None) -> int:
    """The lifter's receptive field T (attribute ``frames``), or ``default``."""
    t = getattr(lifter, "frames", None) or getattr(lifter, "num_frames", None) or default
    if not t:
        raise ValueError("cannot tell the lifter's window length; pass --frames")
    return int(t)


def normalize_per_frame(xy: np.ndarray, frame_size: np.ndarray) -> np.ndarray:
    """Pixels ``(F, J, 2)`` → normalised screen coordinates with each frame's own (w, h)."""
    out = np.empty_like(xy, dtype=np.float32)
    for w, h in np.unique(frame_size, axis=0):  # usually one size for the whole input
        sel = (frame_size[:, 0] == w) & (frame_size[:, 1] == h)
        out[sel] = normalize_screen_coordinates(xy[sel].astype(np.float32), float(w), float(h))
    return out


def run_pipeline(
    frames,
    estimator: TopDownEstimator,
    lifter: nn.Module,
    frames_t: int,
    box_source: BoxSource | None = None,
    missing_mode: str = "interpolate",
    lift_batch: int = 256,
    flip_3d: bool = False,
    device: str | torch.device = "cpu",
    autocast_dtype: torch.dtype | None = None,
    min_score: float = 0.0,
    src_fps: float | None = None,
    lifter_fps: float | None = None,
    resample: bool = True,
) -> PipelineResult:
    """Everything but the files: 2D for every frame, then 3D for every frame.

    ``min_score``: a frame whose person has a mean keypoint score below it is missing (with
    the whole frame as the box, a frame without a person still gets a pose: this tells).
    ``src_fps`` / ``lifter_fps``: the input's and the lifter's frame rates; with ``resample``
    the 2D is lifted at the lifter's rate (``pose3d.resample.lift_at_rate``).
    """
    if missing_mode not in ("interpolate", "nan"):  # before the (long) 2D and 3D passes
        raise ValueError(f"unknown --missing {missing_mode!r}; use interpolate or nan")
    t0 = time.perf_counter()
    source = box_source or FullFrameBoxes()
    if hasattr(source, "observe"):  # a feedback source (--boxes track): frame by frame
        kpts, boxes, sizes = first_person(estimate_2d_people(frames, estimator, source))
    else:
        kpts, boxes, sizes = estimate_2d(frames, estimator, source, MainPersonTracker())
    t1 = time.perf_counter()
    with np.errstate(invalid="ignore"):
        low_score = np.isfinite(kpts).all(axis=(1, 2)) & (kpts[..., 2].mean(axis=1) < min_score)
    kpts[low_score] = np.nan
    missing = ~np.isfinite(kpts).all(axis=(1, 2))
    filled = fill_missing(kpts, missing, "interpolate")
    h36m = coco_to_h36m(filled)
    f = len(kpts)
    if missing.all():  # nobody anywhere: nothing to lift
        pose_3d = np.full((f, H36M.num_joints, 3), np.nan, dtype=np.float32)
    else:
        lifter = lifter.eval().to(device)
        x = normalize_per_frame(h36m[..., :2], sizes)
        pose_3d = lift_at_rate(
            lifter, x, frames_t, H36M, src_fps, lifter_fps, resample, batch_size=lift_batch,
            flip_test=flip_3d, device=device, autocast_dtype=autocast_dtype,
        )  # fmt: skip
    t2 = time.perf_counter()
    if missing_mode == "nan":
        filled = fill_missing(kpts, missing, "nan")
        h36m = coco_to_h36m(filled)
        pose_3d = fill_missing(pose_3d, missing, "nan")
    timings = {"frames": f, "seconds_2d": t1 - t0, "seconds_3d": t2 - t1}
    timings["fps_end_to_end"] = f / max(t2 - t0, 1e-9)
    return PipelineResult(
        filled, h36m.astype(np.float32), pose_3d, missing, boxes, sizes, timings,
        low_score=low_score,
    )  # fmt: skip


def write_pictures(
    frames, result: PipelineResult, out_dir: Path, video: str | None, fps: float, png_every: int,
    view: str = "side",
) -> PictureWriter:  # fmt: skip
    """Pass 2 over the frames: ``[frame + 2D skeleton | 3D skeleton]`` as PNGs and MP4/GIF,
    the 3D axes fixed over the whole clip (``SideBySide.fit_limits``)."""
    draw = SideBySide(H36M, view=view)
    draw.fit_limits(result.pose_3d)
    pics = PictureWriter(out_dir, video, fps, png_every)
    try:
        for f, _, image in frames:
            if image is None:  # unreadable: nothing to draw on
                continue
            if video is None and (png_every <= 0 or f % png_every):
                continue  # neither a PNG nor a video frame: not drawn
            title = f"frame {f}" + (" (missing, interpolated)" if result.missing[f] else "")
            kp = None if not np.isfinite(result.keypoints_2d[f]).all() else result.keypoints_2d[f]
            pics.add(f, _side(draw, image, kp, result.pose_3d[f], title))
    except BaseException:
        pics.abort()  # no half-written video left behind
        raise
    pics.close()
    return pics


def _side(draw: SideBySide, image, kp, pose, title):
    return draw(image, kp, COCO, pose if np.isfinite(pose).all() else None, title)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m pose3d.infer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", required=True, help="video file, image folder or one image")
    p.add_argument("--detector", required=True, help="2D checkpoint (pose2d .ckpt)")
    p.add_argument("--lifter", required=True, help="3D checkpoint (pose3d .ckpt)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--boxes",
        default="full",
        help="full | track | onnx:FILE[,score=S,...] | coco_json:PATH[,min_score=S][,map=FILE] "
        "| detector:MOD:FN",
    )
    p.add_argument(
        "--people",
        default="main",
        choices=("main", "all"),
        help="main: the tracked main person; all: every person, tracked and lifted",
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--compile", action="store_true", help="torch.compile both networks")
    add_input_size_argument(p)
    add_decode_argument(p)
    p.add_argument("--frames", type=int, default=None, help="lifter T (default: from checkpoint)")
    p.add_argument("--no-flip-2d", action="store_true", help="no flip test in the detector")
    p.add_argument("--flip-3d", action="store_true", help="flip test-time augmentation in 3D")
    p.add_argument(
        "--missing",
        default="interpolate",
        choices=("interpolate", "nan"),
        help="frames with nobody: linear interpolation (default) or NaN",
    )
    p.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="frames whose person's mean keypoint score is below this are missing (default: "
        f"{FULL_FRAME_MIN_SCORE} with --boxes full, where every frame gets a box, else 0)",
    )
    p.add_argument("--batch-size", type=int, default=32, help="detector crops per forward")
    p.add_argument(
        "--precision",
        default="32",
        choices=("32", "bf16", "16"),
        help="autocast dtype for both networks (bf16/16 only sensible on CUDA)",
    )
    p.add_argument(
        "--video",
        default="auto",
        choices=("auto", "mp4", "gif", "none"),
        help="animation for video input (auto: mp4)",
    )
    p.add_argument("--png-every", type=int, default=1, help="write every N-th picture (0: none)")
    p.add_argument("--no-pictures", action="store_true", help="only npz/json")
    p.add_argument(
        "--fps",
        type=float,
        default=None,
        help="input frame rate (default: the video's; 25 for images)",
    )
    p.add_argument(
        "--no-resample",
        action="store_true",
        help="lift the frames as they are, not at the lifter's training frame rate",
    )
    p.add_argument(
        "--lifter-fps",
        type=float,
        default=None,
        help="the lifter's training frame rate (default: from the checkpoint, else 50)",
    )
    p.add_argument("--view", default="side", choices=tuple(VIEWS), help="3D panel viewpoint")
    return p.parse_args(argv)


def check_checkpoints(detector: str, lifter: str) -> None:
    """Both checkpoint arguments, before any frame is read or file written (one line each)."""
    swapped = "did you swap --detector and --lifter?"
    require_checkpoint(detector, DETECTOR_KINDS, "--detector", hint=swapped)
    require_checkpoint(lifter, LIFTER_KINDS, "--lifter", hint=swapped)


def main(argv: list[str] | None = None) -> PipelineResult:
    a = parse_args(argv)
    from pose2d.checkpoint import load_detector
    from pose3d.checkpoint import load_lifter

    check_checkpoints(a.detector, a.lifter)
    check_out_folder(a.out)  # before any work: --out must not hold someone else's results
    frames = open_frames(a.input, a.fps or 25.0, on_unreadable="missing")
    if a.fps and frames.kind == "video":
        frames.fps = a.fps  # the container's rate is wrong or missing
    fps_source = "--fps" if a.fps else ("video" if frames.kind == "video" else "default; --fps")
    boxes = make_box_source(a.boxes)
    if hasattr(boxes, "check_coverage"):  # a box file matching no frame stops before any work
        paths = getattr(frames, "paths", None)
        boxes.check_coverage([p.name for p in paths] if paths else [""] * len(frames))
    detector = load_detector(a.detector)
    lifter = load_lifter(a.lifter)
    frames_t = lifter_frames(lifter, a.frames)
    lifter_fps = a.lifter_fps or lifter_frame_rate(a.lifter)
    shown = boxes.describe() if hasattr(boxes, "describe") else a.boxes
    for line in run_summary(a.detector, a.lifter, shown, a.people, frames.fps, fps_source,
                            lifter_fps, not a.no_resample, frames_t):  # fmt: skip
        print(line)
    input_size = a.input_size or detector_input_size(a.detector)
    if a.compile:
        detector, lifter = torch.compile(detector), torch.compile(lifter)
    dtype = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}[a.precision]
    decode = a.decode or detector_decode_method(a.detector)
    est = TopDownEstimator(
        detector, tuple(input_size), not a.no_flip_2d, decode, COCO, a.device, a.batch_size, dtype
    )
    min_score = a.min_score if a.min_score is not None else (
        FULL_FRAME_MIN_SCORE if a.boxes == "full" else 0.0
    )  # fmt: skip
    frames_2d, boxes = prefetch_boxes(frames, boxes)  # batch detectors see several frames
    if a.people == "all":
        result = _run_all_people(a, frames_2d, est, lifter, frames_t, boxes, lifter_fps, dtype)
    else:
        result = run_pipeline(
            frames_2d, est, lifter, frames_t, boxes, a.missing, 256, a.flip_3d,
            a.device, dtype, min_score, frames.fps, lifter_fps, not a.no_resample,
        )  # fmt: skip
    out = Path(a.out)
    missing_idx = np.flatnonzero(result.missing).tolist()
    unreadable = getattr(frames, "unreadable", {})
    low = np.flatnonzero(result.low_score).tolist()
    meta = {
        "input": str(a.input),
        "num_frames": int(len(result.missing)),
        "num_missing": len(missing_idx),
        "missing_frames": missing_idx,
        "unreadable_frames": [
            {"frame": i, "file": frames.paths[i].name, "reason": why}
            for i, why in sorted(unreadable.items())
        ],
        "min_score": min_score,
        "low_score_frames": low,
        "missing_mode": a.missing,
        "fps": frames.fps,
        "layout_2d": "coco (keypoints_2d), h36m (keypoints_2d_h36m); x, y pixels + score",
        "layout_3d": "h36m, camera space, root-relative, metres",
        "joint_names_coco": list(COCO.joint_names),
        "joint_names_h36m": list(H36M.joint_names),
        "lifter_frames": frames_t,
        "fps_source": fps_source,
        "lifter_fps": lifter_fps,
        "resampled": bool(
            not a.no_resample and lifter_fps and abs(frames.fps / lifter_fps - 1) >= 0.01
        ),
        "people": a.people,
        "num_tracks": len(result.tracks.get("track_ids", [])) if a.people == "all" else None,
        "box_source": a.boxes,
        "timings": result.timings,
    }
    video = None if a.no_pictures or a.video == "none" or frames.kind != "video" else a.video
    video = "mp4" if video == "auto" else video
    planned = [out / "results.npz", out / "results.json"]
    if not a.no_pictures and a.png_every > 0:
        n = len(result.missing)
        planned += [out / "frames" / f"{i:06d}.png" for i in range(0, n, a.png_every)]
    planned += [out / f"result.{video}"] if video else []
    clear_previous(out)  # our previous run's files only: no stale frames next to the new ones
    out.mkdir(parents=True, exist_ok=True)
    record_outputs(out, planned)  # first, so a run that fails half-way is cleared next time
    npz, js = write_results(out, "results", result.arrays, meta)
    result.files.update(npz=npz, json=js)
    why = [f"{len(unreadable)} unreadable"] if unreadable else []
    why += [f"{len(low)} with mean keypoint score < {min_score:g}"] if low else []
    print(
        f"{meta['num_frames']} frames, {meta['num_missing']} missing {missing_idx[:20]}"
        f"{'...' if len(missing_idx) > 20 else ''}"
        f"{' (' + ', '.join(why) + ')' if why else ''}; "
        f"{result.timings['fps_end_to_end']:.1f} frames/s (2D+3D, {a.device}); wrote {npz}, {js}"
    )
    if not a.no_pictures:
        t = time.perf_counter()
        if a.people == "all":
            from pose3d.people_pipeline import write_people_pictures

            pics = write_people_pictures(frames, result.tracks, result.frame_size, out, video,
                                         frames.fps, a.png_every, a.view)  # fmt: skip
        else:
            pics = write_pictures(frames, result, out, video, frames.fps, a.png_every, a.view)
        result.timings["seconds_pictures"] = time.perf_counter() - t
        result.files.update(pngs=pics.pngs, video=pics.video_path)
        record_outputs(out, [*planned, *pics.pngs, pics.video_path])  # what was really written
        shown = pics.pngs[0] if pics.pngs else None
        codec = f" ({pics.codec})" if pics.codec else ""
        print(f"pictures: {out / 'frames'} (e.g. {shown}); animation: {pics.video_path}{codec}")
    return result


def _run_all_people(a, frames, est, lifter, frames_t, boxes, lifter_fps, dtype) -> PipelineResult:
    """``--people all``: every track lifted (``pose3d.people_pipeline``); the main track fills
    the single-person fields, the ``track_*`` arrays go to ``tracks``."""
    from pose3d.people_pipeline import run_people_pipeline

    main_arr, tracks, timings = run_people_pipeline(
        frames, est, lifter.eval().to(a.device), frames_t, boxes, a.missing, frames.fps,
        lifter_fps, not a.no_resample, batch_size=256, flip_test=a.flip_3d, device=a.device,
        autocast_dtype=dtype,
    )  # fmt: skip
    tracks["main_track"] = main_arr.pop("main_track")
    return PipelineResult(
        main_arr["keypoints_2d"], main_arr["keypoints_2d_h36m"], main_arr["pose_3d"],
        main_arr["missing"], main_arr["boxes"], main_arr["frame_size"], timings,
        low_score=np.zeros(len(main_arr["missing"]), bool), tracks=tracks,
    )  # fmt: skip


def cli(argv: list[str] | None = None) -> int:
    """Console entry: :func:`main`; a user error is one ``error:`` line and exit status 2
    (``POSE_TRACEBACK=1`` shows the traceback)."""
    return exit_code(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
