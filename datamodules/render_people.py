"""A synthetic clip with several people, for ``--people all`` (tests, ``make demo``).

Each person is a synthetic Human3.6M-style motion (``datamodules.synthetic_h36m``) moved in the
world by its own offset, projected through one Human3.6M camera and drawn in the style of the
synthetic COCO set (what the synthetic detector is trained on), far people first. A person can
enter mid-clip (``enter``). Written into ``out``::

    clip.mp4       the frames (mp4v)
    boxes.json     every visible person's box per frame (COCO results, image_id = frame index)
    truth.npz      px (P, F, 17, 2) COCO-17 image px, visible (P, F) bool, pose_3d (P, F, 17, 3)
                   camera-space root-relative metres (H36M-17), fps
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from datamodules.cameras import h36m_camera, project_to_2d, world_to_camera
from datamodules.render_h36m import coco_points_3d, person_boxes, write_video
from datamodules.skeleton import H36M32_KEPT
from datamodules.synthetic_coco import draw_figure, textured_background
from datamodules.synthetic_h36m import synthesize_h36m


def render_people_clip(
    out: str | Path,
    frames: int = 60,
    actions: tuple[str, ...] = ("Walking", "Greeting"),
    offsets_m: tuple[tuple[float, float], ...] = ((-0.9, 0.0), (0.9, 0.3)),
    enter: tuple[int, ...] = (0, 20),
    drift_mps: tuple[tuple[float, float], ...] | None = None,
    scale: float = 0.32,
    fps: float = 50.0,
    seed: int = 0,
    subject: str = "S9",
    camera: int = 1,
) -> Path:
    """Render ``len(actions)`` people (world x/y offsets ``offsets_m``, first frame ``enter``,
    optionally moved by ``drift_mps`` world x/y metres per second each, e.g. to make them cross);
    returns ``out``. All people share one subject's body and camera."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pos3d, _, _, _ = synthesize_h36m(seed=seed, frames=frames, subjects=(subject,),
                                     actions=actions, subactions=1)  # fmt: skip
    cam = h36m_camera(subject, camera)
    size = (round(cam.res_w * scale), round(cam.res_h * scale))
    px, depth, cam3d = [], [], []
    drift = drift_mps or [(0.0, 0.0)] * len(actions)
    t = np.arange(frames)[:, None, None] / fps
    for action, (dx, dy), (vx, vy) in zip(actions, offsets_m, drift, strict=True):
        key = next(k for k in pos3d[subject] if k.split(" ")[0] == action)
        world17 = pos3d[subject][key][:, list(H36M32_KEPT)].astype(np.float64)
        world17 = world17 - np.r_[world17[0, 0, :2], 0.0] + [dx, dy, 0.0]  # start at the offset
        world17 = world17 + t * [vx, vy, 0.0]
        c3 = world_to_camera(world17, cam.orientation, cam.translation)
        cam3d.append(c3 - c3[:, :1])
        pts = world_to_camera(coco_points_3d(world17), cam.orientation, cam.translation)
        px.append(project_to_2d(pts, cam.intrinsic) * [size[0] / cam.res_w, size[1] / cam.res_h])
        depth.append(c3[:, 0, 2])
    n = len(actions)
    visible = np.array([[f >= enter[p] for f in range(frames)] for p in range(n)])
    background = textured_background(np.random.default_rng(seed), size)
    video, dets = [], []
    for f in range(frames):
        img = background.copy()
        for p in sorted(range(n), key=lambda p: -depth[p][f]):  # far first
            if not visible[p, f]:
                continue
            torso = float(np.linalg.norm(px[p][f, 5] - px[p][f, 11]))
            draw_figure(img, px[p][f], torso, np.random.default_rng(p))
            box = person_boxes(px[p][f : f + 1], size)[0]
            dets.append({"image_id": f, "category_id": 1, "bbox": box[:4].round(2).tolist(),
                         "score": 1.0})  # fmt: skip
        video.append(img)
    write_video(out / "clip.mp4", video, fps)
    (out / "boxes.json").write_text(json.dumps(dets))
    np.savez(out / "truth.npz", px=np.stack(px).astype(np.float32), visible=visible,
             pose_3d=np.stack(cam3d).astype(np.float32), fps=fps)  # fmt: skip
    return out
