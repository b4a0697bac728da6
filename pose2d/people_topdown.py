"""Top-down 2D for every person box of every frame, then tracks (``--people all``).

:func:`estimate_2d_people` streams the frames once: boxes → one crop per box → batched HRNet
(``chunk`` crops per call) → keypoints per box; then :class:`pose2d.tracking.MultiPersonTracker`
assigns track ids frame by frame from the boxes and keypoints. A box source with feedback
(``observe``, e.g. :class:`pose2d.keypoint_boxes.KeypointBoxes`) is run frame by frame instead,
with the keypoints fed back and an optional second pass on the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose2d.boxes import BoxSource
from pose2d.topdown import TopDownEstimator, make_crops
from pose2d.tracking import MultiPersonTracker


@dataclass
class PeopleFrames:
    """Per frame ``f``: ``boxes[f]`` ``(N_f, 5)``, ``keypoints[f]`` ``(N_f, J, 3)`` image px +
    score, ``track_ids[f]`` ``(N_f,)`` (``-1``: untracked); ``sizes`` ``(F, 2)`` width, height."""

    boxes: list[np.ndarray]
    keypoints: list[np.ndarray]
    track_ids: list[np.ndarray]
    sizes: np.ndarray

    @property
    def num_frames(self) -> int:
        return len(self.boxes)


def estimate_2d_people(
    frames,
    estimator: TopDownEstimator,
    box_source: BoxSource,
    tracker: MultiPersonTracker | None = None,
    chunk: int = 32,
) -> PeopleFrames:
    """Every box of every frame through the 2D network, then track ids (see the module doc)."""
    nj = estimator.skeleton.num_joints
    boxes, kpts, sizes = [], [], []
    pending: list[tuple[int, int, np.ndarray, np.ndarray]] = []  # (frame, box, crop, c|s)
    feedback = hasattr(box_source, "observe")

    def flush() -> None:
        if not pending:
            return
        x = np.stack([p[2] for p in pending])
        cs = np.stack([p[3] for p in pending])
        out = estimator.from_crops(x, cs[:, 0], cs[:, 1])
        for (f, k, _, _), kp in zip(pending, out, strict=True):
            kpts[f][k] = kp
        pending.clear()

    def queue(f: int, image: np.ndarray, cand: np.ndarray) -> None:
        boxes[f] = cand
        kpts[f] = np.full((len(cand), nj, 3), np.nan, dtype=np.float32)
        if len(cand):
            x, c, s = make_crops([image] * len(cand), cand[:, :4], estimator.input_size,
                                 estimator.use_udp)  # fmt: skip
            for k in range(len(cand)):
                pending.append((f, k, x[k], np.stack([c[k], s[k]])))

    for f, name, image in frames:
        boxes.append(None)
        kpts.append(None)
        if image is None:  # an unreadable image: nobody seen in this frame
            sizes.append(None)
            boxes[f], kpts[f] = np.zeros((0, 5), np.float32), np.zeros((0, nj, 3), np.float32)
            continue
        sizes.append(image.shape[1::-1])
        queue(f, image, np.asarray(box_source(f, name, image), dtype=np.float32).reshape(-1, 5))
        if feedback:
            flush()
            again = box_source.observe(f, image, kpts[f])
            if again is not None:
                queue(f, image, np.asarray(again, dtype=np.float32).reshape(-1, 5))
                flush()
                box_source.observe(f, image, kpts[f])
        elif len(pending) >= chunk:
            flush()
    flush()
    if not sizes:
        raise ValueError("the input has no frames")
    known = [z for z in sizes if z is not None]
    if not known:
        raise ValueError("none of the input images could be read")
    sizes = [known[0] if z is None else z for z in sizes]  # unreadable: the first size seen
    tracker = tracker or MultiPersonTracker()
    ids = [tracker.update(b, k) for b, k in zip(boxes, kpts, strict=True)]
    return PeopleFrames(boxes, kpts, ids, np.asarray(sizes, dtype=np.int64))


def first_person(people: PeopleFrames) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first box of every frame (a one-person source such as ``KeypointBoxes``) in the
    single-person layout of :func:`pose2d.topdown.estimate_2d`: keypoints ``(F, J, 3)``, boxes
    ``(F, 5)``, sizes ``(F, 2)`` (NaN where the frame had no box)."""
    nj = next((k.shape[1] for k in people.keypoints if len(k)), 17)
    kp = np.full((people.num_frames, nj, 3), np.nan, dtype=np.float32)
    bx = np.full((people.num_frames, 5), np.nan, dtype=np.float32)
    for f, (b, k) in enumerate(zip(people.boxes, people.keypoints, strict=True)):
        if len(b):
            kp[f], bx[f] = k[0], b[0]
    return kp, bx, people.sizes
