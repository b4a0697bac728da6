"""Per-person tracks for ``--people all``: collect, lift each, and lay out as arrays.

A track lives from its first to its last frame (``start``, ``end`` exclusive). Inside that range
the frames where it was not seen (gaps the tracker bridged) are filled like missing frames of
the main person (linear interpolation, or NaN with ``--missing nan``); outside it the track has
no pose at all (NaN in the padded arrays). Each track is lifted on its own, with the same
edge-padded sliding windows as one person (a track shorter than the window is padded at both
ends), after resampling to the lifter's frame rate (:func:`pose3d.resample.lift_at_rate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datamodules.cameras import normalize_screen_coordinates
from datamodules.skeleton import H36M, coco_to_h36m
from pose2d.missing import fill_missing
from pose2d.people_topdown import PeopleFrames
from pose3d.resample import lift_at_rate


@dataclass
class Track:
    """One person: frames ``start..end-1``; arrays over those ``L = end − start`` frames."""

    track_id: int
    start: int
    end: int
    keypoints_2d: np.ndarray  # (L, 17, 3) COCO-17 px + score, NaN where not seen
    boxes: np.ndarray  # (L, 5), NaN where not seen
    seen: np.ndarray  # (L,) bool
    keypoints_2d_h36m: np.ndarray | None = None  # (L, 17, 3) after filling
    pose_3d: np.ndarray | None = None  # (L, 17, 3) camera space, root-relative, metres


def collect_tracks(people: PeopleFrames, min_frames: int = 1) -> list[Track]:
    """Tracks by id from per-frame detections; tracks seen in fewer than ``min_frames`` frames
    are dropped (a spurious detection is not a person)."""
    hits: dict[int, list[tuple[int, int]]] = {}
    for f, ids in enumerate(people.track_ids):
        for k, i in enumerate(ids):
            if i >= 0:
                hits.setdefault(int(i), []).append((f, k))
    tracks = []
    for tid in sorted(hits):
        if len(hits[tid]) < min_frames:
            continue
        start, end = hits[tid][0][0], hits[tid][-1][0] + 1
        nj = people.keypoints[start].shape[1]
        kp = np.full((end - start, nj, 3), np.nan, dtype=np.float32)
        bx = np.full((end - start, 5), np.nan, dtype=np.float32)
        for f, k in hits[tid]:
            kp[f - start] = people.keypoints[f][k]
            bx[f - start] = people.boxes[f][k]
        seen = np.isfinite(kp).all(axis=(1, 2))
        tracks.append(Track(tid, start, end, kp, bx, seen))
    return tracks


def lift_track(
    track: Track, sizes: np.ndarray, lifter, frames: int, src_fps: float | None,
    lifter_fps: float | None, resample: bool = True, missing_mode: str = "interpolate",
    **lift_kwargs,
) -> Track:  # fmt: skip
    """Fill the track's gaps, COCO → H36M, normalise with the frame sizes ``(F, 2)``, lift."""
    filled = fill_missing(track.keypoints_2d, ~track.seen, "interpolate")
    h36m = coco_to_h36m(filled)
    size = sizes[track.start : track.end]
    x = np.empty(h36m.shape[:2] + (2,), dtype=np.float32)
    for w, h in np.unique(size, axis=0):
        sel = (size[:, 0] == w) & (size[:, 1] == h)
        x[sel] = normalize_screen_coordinates(
            h36m[sel, :, :2].astype(np.float32), float(w), float(h)
        )
    pose = lift_at_rate(lifter, x, frames, H36M, src_fps, lifter_fps, resample, **lift_kwargs)
    if missing_mode == "nan":
        h36m = coco_to_h36m(fill_missing(track.keypoints_2d, ~track.seen, "nan"))
        pose = fill_missing(pose, ~track.seen, "nan")
    track.keypoints_2d_h36m = h36m.astype(np.float32)
    track.pose_3d = pose.astype(np.float32)
    return track


def tracks_to_arrays(tracks: list[Track], num_frames: int) -> dict[str, np.ndarray]:
    """Padded arrays for the npz/json (K tracks, F frames; NaN outside a track's frames):
    ``track_ids (K,)``, ``track_frames (K, 2)`` first frame and one past the last,
    ``track_keypoints_2d (K, F, 17, 3)``, ``track_keypoints_2d_h36m (K, F, 17, 3)``,
    ``track_pose_3d (K, F, 17, 3)``, ``track_boxes (K, F, 5)``, ``track_seen (K, F)`` bool."""
    k = len(tracks)
    out = {
        "track_ids": np.array([t.track_id for t in tracks], dtype=np.int64),
        "track_frames": np.array([[t.start, t.end] for t in tracks], dtype=np.int64).reshape(k, 2),
        "track_seen": np.zeros((k, num_frames), dtype=bool),
    }
    for key, width in (("keypoints_2d", 3), ("keypoints_2d_h36m", 3), ("pose_3d", 3)):
        out[f"track_{key}"] = np.full((k, num_frames, 17, width), np.nan, dtype=np.float32)
    out["track_boxes"] = np.full((k, num_frames, 5), np.nan, dtype=np.float32)
    for i, t in enumerate(tracks):
        sl = slice(t.start, t.end)
        out["track_seen"][i, sl] = t.seen
        out["track_boxes"][i, sl] = t.boxes
        out["track_keypoints_2d"][i, sl] = t.keypoints_2d
        if t.keypoints_2d_h36m is not None:
            out["track_keypoints_2d_h36m"][i, sl] = t.keypoints_2d_h36m
        if t.pose_3d is not None:
            out["track_pose_3d"][i, sl] = t.pose_3d
    return out
