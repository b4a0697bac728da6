"""``--people all``: every person tracked, lifted and drawn (the multi-person form of
``pose3d.infer.run_pipeline``).

2D for every box of every frame (``pose2d.people_topdown``), tracks (``pose2d.tracking.
MultiPersonTracker``), each track lifted on its own at the lifter's frame rate
(``pose3d.tracks``). The track seen in the most frames is the *main* track: it fills the
single-person arrays (``keypoints_2d``, ``pose_3d``, ... as with ``--people main``), so
readers of those keys keep working; all tracks are in the ``track_*`` arrays.

In the pictures every person has its colour and ``id``; the 3D skeletons (root-relative, no
global trajectory) are placed side by side by their image position: x offset = the pelvis'
normalised image x (−1 … 1) × ``spread`` metres (2.5 m ≈ half the field of view at 5 m for a
60° lens) — a layout for looking, not a metric reconstruction.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from datamodules.skeleton import COCO, H36M
from pose2d.missing import fill_missing
from pose2d.people_topdown import estimate_2d_people
from pose2d.tracking import MultiPersonTracker
from pose3d.draw import SideBySide, View
from pose3d.outputs import PictureWriter
from pose3d.tracks import collect_tracks, lift_track, tracks_to_arrays

SPREAD_M = 2.5


def run_people_pipeline(
    frames, estimator, lifter, frames_t: int, box_source, missing_mode: str = "interpolate",
    src_fps: float | None = None, lifter_fps: float | None = None, resample: bool = True,
    tracker: MultiPersonTracker | None = None, min_track_frames: int = 1, **lift_kwargs,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict]:  # fmt: skip
    """Frames → ``(main arrays, track arrays, timings)``.

    Main arrays have the single-person keys and shapes of ``PipelineResult.arrays``; track
    arrays are :func:`pose3d.tracks.tracks_to_arrays` (``K`` tracks × ``F`` frames).
    """
    if missing_mode not in ("interpolate", "nan"):
        raise ValueError(f"unknown --missing {missing_mode!r}; use interpolate or nan")
    t0 = time.perf_counter()
    people = estimate_2d_people(frames, estimator, box_source, tracker)
    t1 = time.perf_counter()
    f = people.num_frames
    tracks = collect_tracks(people, min_track_frames)
    for t in tracks:
        lift_track(t, people.sizes, lifter, frames_t, src_fps, lifter_fps, resample,
                   missing_mode, **lift_kwargs)  # fmt: skip
    t2 = time.perf_counter()
    arr = tracks_to_arrays(tracks, f)
    main = _main_arrays(arr, people.sizes, missing_mode)
    timings = {"frames": f, "seconds_2d": t1 - t0, "seconds_3d": t2 - t1, "tracks": len(tracks)}
    timings["fps_end_to_end"] = f / max(t2 - t0, 1e-9)
    return main, arr, timings


def _main_arrays(arr: dict, sizes: np.ndarray, missing_mode: str) -> dict[str, np.ndarray]:
    """The single-person arrays from the track seen in the most frames (all NaN, all missing
    when there is no track)."""
    f = len(sizes)
    if len(arr["track_ids"]) == 0:
        nan = np.full((f, 17, 3), np.nan, dtype=np.float32)
        return {"keypoints_2d": nan, "keypoints_2d_h36m": nan.copy(), "pose_3d": nan.copy(),
                "missing": np.ones(f, bool), "boxes": np.full((f, 5), np.nan, np.float32),
                "frame_size": sizes, "main_track": np.int64(-1)}  # fmt: skip
    k = int(np.argmax(arr["track_seen"].sum(1)))
    missing = ~arr["track_seen"][k]
    lo, hi = arr["track_frames"][k]
    outside = np.ones(f, bool)
    outside[lo:hi] = False
    return {
        "keypoints_2d": fill_missing(arr["track_keypoints_2d"][k], missing, missing_mode),
        "keypoints_2d_h36m": fill_missing(arr["track_keypoints_2d_h36m"][k], outside, missing_mode),
        "pose_3d": fill_missing(arr["track_pose_3d"][k], outside, missing_mode),
        "missing": missing,
        "boxes": arr["track_boxes"][k],
        "frame_size": sizes,
        "main_track": np.int64(arr["track_ids"][k]),
    }


def placed_poses(arr: dict, sizes: np.ndarray, spread: float = SPREAD_M) -> np.ndarray:
    """``(K, F, 17, 3)`` track poses moved side by side by their pelvis' image x (module doc)."""
    root_px = arr["track_keypoints_2d_h36m"][:, :, H36M.root, 0]  # (K, F)
    x_norm = root_px / sizes[None, :, 0] * 2 - 1
    out = arr["track_pose_3d"].copy()
    out[..., 0] += (np.nan_to_num(x_norm) * spread)[..., None]
    return out


def write_people_pictures(
    frames, arr: dict, sizes: np.ndarray, out_dir: Path, video: str | None, fps: float,
    png_every: int, view: View = "side",
) -> PictureWriter:  # fmt: skip
    """``[frame + every person's 2D | every person's 3D]`` as PNGs and MP4/GIF, colours by id."""
    draw = SideBySide(H36M, view=view)
    placed = placed_poses(arr, sizes)
    draw.fit_limits(placed)
    pics = PictureWriter(out_dir, video, fps, png_every)
    ids = arr["track_ids"].tolist()
    try:
        for f, _, image in frames:
            if image is None or (video is None and (png_every <= 0 or f % png_every)):
                continue  # unreadable, or neither a PNG nor a video frame: not drawn
            people = []
            for k, tid in enumerate(ids):
                lo, hi = arr["track_frames"][k]
                if not lo <= f < hi:
                    continue
                kp = arr["track_keypoints_2d"][k, f]
                people.append((tid, kp if np.isfinite(kp).all() else None,
                               arr["track_boxes"][k, f], placed[k, f]))  # fmt: skip
            pics.add(f, draw.people(image, people, COCO, f"frame {f}: {len(people)} people"))
    except BaseException:
        pics.abort()  # no half-written video left behind
        raise
    pics.close()
    return pics
