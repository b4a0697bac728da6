"""Procedural human motion written in EXACTLY the VideoPose3D Human3.6M file formats.

A stand-in for Human3.6M when the real data is absent: the same loader, cache and metrics run on
it unchanged. Each subject gets its own bone lengths; each (action, sub-action) a parametric
motion: joint angles driven by sinusoids plus smooth noise, posed by forward kinematics on the
H36M-17 tree (``skeleton.H36M.parents``), with a moving, turning root. Output (``--out``)::

    data_3d_h36m.npz                  positions_3d: subject -> action -> (F, 32, 3) world metres
    data_2d_h36m_gt.npz               projection through the 4 H36M cameras (with distortion), px
    data_2d_h36m_synthetic_det.npz    detector-like: per-joint jitter, rare outliers, 2 extra
                                      frames per sequence, plus ``confidences`` (F + 2, 17)
    cache/gt/, cache/synthetic_det/   the pickle-free caches, built from memory
    GENERATED.json                    manifest (generator, version, parameters), written last

The 15 joints dropped by every loader (``H36M32_DROPPED``) copy the preceding kept joint.
World z is up, 50 fps. Everything is deterministic given ``seed``.

    python -m datamodules.synthetic_h36m --out data/synthetic_h36m --seed 0 --frames 160
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from callbacks.user_error import UserError
from datamodules.cameras import H36M_SUBJECTS, h36m_camera, project_to_2d, world_to_camera
from datamodules.generated_folder import claim, write_marker
from datamodules.h36m_files import FILE_3D, file_2d, write_2d_h36m, write_3d_h36m
from datamodules.skeleton import H36M, H36M32_KEPT, H36M_ACTIONS

FPS = 50
DET_EXTRA_FRAMES = 2  # detections longer than the mocap, as in the public detection files

# Rest pose in the body frame (x = subject's left, y = forward, z = up); metres for a 1.0 scale.
_REST = {
    "pelvis": (0.0, 0.0, 0.0),
    "hip": (0.13, 0.0, 0.0),
    "knee": (0.0, 0.0, -0.45),
    "foot": (0.0, 0.0, -0.44),
    "spine": (0.0, 0.0, 0.23),
    "thorax": (0.0, 0.0, 0.25),
    "neck_nose": (0.0, 0.06, 0.11),
    "head": (0.0, -0.02, 0.115),
    "shoulder": (0.15, 0.0, -0.02),
    "elbow": (0.0, 0.0, -0.28),
    "wrist": (0.0, 0.0, -0.25),
}
ANKLE_HEIGHT = 0.08

# Per action: walking speed (m/s), sitting (0 stand, 1 sit, "cycle" sit down / stand up),
# forward bending amplitude (rad), torso turning amplitude (rad), arm style.
_ACTIONS = {
    "Directions": (0.0, 0, 0.1, 0.5, "gesture"),
    "Discussion": (0.0, 0, 0.1, 0.4, "gesture"),
    "Eating": (0.0, 1, 0.2, 0.1, "hand_to_head"),
    "Greeting": (0.3, 0, 0.2, 0.3, "wave"),
    "Phoning": (0.2, 0, 0.1, 0.3, "phone"),
    "Photo": (0.0, 0, 0.3, 0.4, "camera"),
    "Posing": (0.0, 0, 0.1, 0.5, "arms_out"),
    "Purchases": (0.3, 0, 0.6, 0.3, "idle"),
    "Sitting": (0.0, 1, 0.4, 0.2, "gesture"),
    "SittingDown": (0.0, "cycle", 0.7, 0.2, "idle"),
    "Smoking": (0.0, 0, 0.1, 0.2, "hand_to_head"),
    "Waiting": (0.0, 0, 0.1, 0.3, "idle"),
    "WalkDog": (0.9, 0, 0.2, 0.0, "leash"),
    "Walking": (1.2, 0, 0.0, 0.0, "swing"),
    "WalkTogether": (1.0, 0, 0.0, 0.0, "swing"),
}
assert set(_ACTIONS) == set(H36M_ACTIONS)


def _bone_name(joint: str) -> str:
    return joint.removeprefix("left_").removeprefix("right_")


def _side(joint: str) -> float:
    """+1 for the subject's left (+x), −1 for the right, 0 on the midline."""
    return 1.0 if joint.startswith("left_") else -1.0 if joint.startswith("right_") else 0.0


def subject_offsets(rng: np.random.Generator) -> np.ndarray:
    """Bone offsets ``(17, 3)`` in the body frame: global scale ±8 %, symmetric bones ±4 %."""
    scale = rng.uniform(0.92, 1.08)
    jitter = {b: rng.uniform(0.96, 1.04) for b in _REST}
    out = np.zeros((H36M.num_joints, 3))
    for j, name in enumerate(H36M.joint_names):
        b = _bone_name(name)
        off = np.array(_REST[b]) * scale * jitter[b]
        off[0] *= _side(name) if _side(name) else 1.0
        out[j] = off
    return out


def _smooth_noise(rng: np.random.Generator, t: np.ndarray, shape: tuple, amp: float) -> np.ndarray:
    """Sum of 3 random low-frequency sinusoids: ``(F, *shape)``."""
    freq = rng.uniform(0.1, 0.8, (3, *shape))
    phase = rng.uniform(0, 2 * np.pi, (3, *shape))
    a = rng.uniform(0.3, 1.0, (3, *shape)) * amp / 3
    tt = t.reshape(-1, *([1] * len(shape)))
    return sum(a[i] * np.sin(2 * np.pi * freq[i] * tt + phase[i]) for i in range(3))


def action_motion(
    action: str, rng: np.random.Generator, frames: int, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local joint angles ``(F, 17, 3)`` (flexion x, abduction y, twist z; rad), root position
    ``(F, 3)`` world metres and root yaw ``(F,)`` for one sequence of ``action``."""
    speed, sit, bend_amp, turn_amp, arms = _ACTIONS[action]
    j = H36M.index
    t = np.arange(frames) / FPS
    var = rng.uniform(0.8, 1.2)  # per-sequence amplitude / tempo variation
    ang = _smooth_noise(rng, t, (H36M.num_joints, 3), 0.08)
    slow = 2 * np.pi * rng.uniform(0.15, 0.3) * var * t + rng.uniform(0, 2 * np.pi)
    u = 0.5 - 0.5 * np.cos(slow)  # slow 0..1 cycle

    # sitting level s: hips flex, knees bend, the pelvis drops by the thigh length
    s = np.full_like(t, float(sit)) if sit != "cycle" else np.clip(1.6 * u - 0.3, 0.0, 1.0)
    for side in ("left", "right"):
        ang[:, j(f"{side}_hip"), 0] += 1.45 * s
        ang[:, j(f"{side}_knee"), 0] -= 1.5 * s
    # locomotion: alternating hip flexion, knee bend in swing, counter-swinging arms
    step = 2 * np.pi * 0.9 * var * np.sqrt(max(speed, 0.0) / 1.2) * t + rng.uniform(0, 2 * np.pi)
    gait = min(speed / 1.2, 1.0)
    for side, sgn in (("right", 1.0), ("left", -1.0)):
        ph = step if sgn > 0 else step + np.pi
        ang[:, j(f"{side}_hip"), 0] += gait * 0.45 * np.sin(ph)
        ang[:, j(f"{side}_knee"), 0] -= gait * (0.1 + 0.6 * np.clip(np.sin(ph + 1.2), 0, None))
        ang[:, j(f"{side}_shoulder"), 0] -= gait * 0.35 * np.sin(ph) if arms == "swing" else 0.0
        ang[:, j(f"{side}_elbow"), 0] += 0.25 + gait * 0.15 * (1 + np.sin(ph))
        ang[:, j(f"{side}_shoulder"), 1] += -_side(f"{side}_") * 0.1  # arms off the torso
    # upper body
    ang[:, j("spine"), 0] -= bend_amp * var * u + 0.25 * s
    ang[:, j("spine"), 2] += turn_amp * np.sin(0.7 * slow + 1.0)
    ang[:, j("neck_nose"), 2] += 0.5 * turn_amp * np.sin(0.5 * slow)
    rs, re, ls, le = j("right_shoulder"), j("right_elbow"), j("left_shoulder"), j("left_elbow")
    fast = 2 * np.pi * rng.uniform(1.5, 2.5) * t
    if arms == "gesture":
        g = _smooth_noise(rng, t, (4,), 1.0)
        ang[:, [rs, ls], 0] += 0.6 + 0.6 * g[:, :2]
        ang[:, [re, le], 0] += 0.8 + 0.6 * g[:, 2:]
    elif arms == "hand_to_head":
        ang[:, rs, 0] += 0.3 + 0.5 * u
        ang[:, re, 0] += 0.4 + 1.8 * u
    elif arms == "phone":
        ang[:, rs, 0] += 0.6
        ang[:, rs, 1] += 0.3
        ang[:, re, 0] += 2.2
    elif arms == "wave":
        ang[:, rs, 1] += 2.3 * u
        ang[:, re, 0] += 0.4 + 0.4 * u * np.sin(fast)
    elif arms == "camera":
        ang[:, [rs, ls], 0] += (1.2 * u)[:, None]
        ang[:, [re, le], 0] += (1.8 * u)[:, None]
    elif arms == "arms_out":
        ang[:, rs, 1] += 1.3 * u
        ang[:, ls, 1] -= 1.3 * u
        ang[:, [re, le], 0] += 0.3
    elif arms == "leash":
        ang[:, rs, 0] += 0.5 + 0.1 * np.sin(fast)
        ang[:, re, 0] += 0.4
    # root: a circle when walking, a small drift otherwise; yaw follows the path or turns slowly
    radius = rng.uniform(1.0, 1.4)
    theta0 = rng.uniform(0, 2 * np.pi)
    if speed > 0:
        theta = theta0 + rng.choice([-1.0, 1.0]) * speed / radius * t
        xy = radius * np.stack([np.cos(theta), np.sin(theta)], -1)
        vel = np.gradient(xy, axis=0)
        yaw = np.arctan2(-vel[:, 0], vel[:, 1])
    else:
        centre = rng.uniform(-0.5, 0.5, 2)
        xy = centre + 0.15 * _smooth_noise(rng, t, (2,), 1.0)
        yaw = rng.uniform(-np.pi, np.pi) + 0.6 * turn_amp * np.sin(0.3 * slow)
        yaw = np.broadcast_to(yaw, t.shape).copy()
    leg = -(offsets[j("right_knee"), 2] + offsets[j("right_foot"), 2])
    thigh = -offsets[j("right_knee"), 2]
    height = leg + ANKLE_HEIGHT - s * thigh - 0.03 * gait * (1 + np.cos(2 * step))
    root = np.concatenate([xy, height[:, None]], -1)
    return ang, root, np.unwrap(yaw)


def forward_kinematics(
    angles: np.ndarray, root: np.ndarray, yaw: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """World positions ``(F, 17, 3)`` from local angles ``(F, 17, 3)``, root ``(F, 3)``, yaw."""
    frames = len(angles)
    local = Rotation.from_euler("xyz", angles.reshape(-1, 3)).as_matrix().reshape(frames, -1, 3, 3)
    glob = np.zeros((frames, H36M.num_joints, 3, 3))
    pos = np.zeros((frames, H36M.num_joints, 3))
    heading = Rotation.from_euler("z", yaw[:, None]).as_matrix()
    for jnt, parent in enumerate(H36M.parents):  # parents precede children in the H36M order
        if parent < 0:
            glob[:, jnt] = heading @ local[:, jnt]
            pos[:, jnt] = root
        else:
            glob[:, jnt] = glob[:, parent] @ local[:, jnt]
            pos[:, jnt] = pos[:, parent] + glob[:, parent] @ offsets[jnt]
    return pos


def to_32_joints(pos17: np.ndarray) -> np.ndarray:
    """``(F, 17, 3)`` → ``(F, 32, 3)``: kept joints in place, each dropped joint copies the
    preceding kept one (every loader drops them)."""
    kept = np.asarray(H36M32_KEPT)
    src = np.searchsorted(kept, np.arange(32), side="right") - 1
    return pos17[:, np.maximum(src, 0)]


def _action_keys(subactions: int) -> list[tuple[str, str]]:
    if subactions == 1:
        return [(a, a) for a in H36M_ACTIONS]
    return [(a, f"{a} {k + 1}") for a in H36M_ACTIONS for k in range(subactions)]


GENERATOR = "datamodules.synthetic_h36m"
GENERATOR_VERSION = 1
SOURCES = ("gt", "synthetic_det")  # the 2D files (and caches) the generator writes


def synthetic_params(
    seed: int = 0,
    frames: int = 160,
    subjects: tuple[str, ...] = H36M_SUBJECTS,
    actions: tuple[str, ...] = H36M_ACTIONS,
    subactions: int = 2,
    det_sigma_px: float = 3.0,
    outlier_prob: float = 0.005,
) -> dict:
    """The generator's parameters as stored in its manifest (JSON types)."""
    return {
        "seed": int(seed), "frames": int(frames), "subjects": list(subjects),
        "actions": list(actions), "subactions": int(subactions),
        "det_sigma_px": float(det_sigma_px), "outlier_prob": float(outlier_prob),
    }  # fmt: skip


def synthesize_h36m(
    seed: int = 0,
    frames: int = 160,
    subjects: tuple[str, ...] = H36M_SUBJECTS,
    actions: tuple[str, ...] = H36M_ACTIONS,
    subactions: int = 2,
    det_sigma_px: float = 3.0,
    outlier_prob: float = 0.005,
) -> tuple[dict, dict, dict, dict]:
    """In memory: ``positions_3d`` (subject -> action -> ``(F, 32, 3)``), GT 2D and detected 2D
    (subject -> action -> 4 × ``(F[+2], 17, 2)`` px) and the detections' ``(F + 2, 17)`` scores."""
    positions_3d: dict = {}
    gt_2d: dict = {}
    det_2d: dict = {}
    det_conf: dict = {}
    for subject in subjects:
        sid = int(subject.lstrip("S"))
        offsets = subject_offsets(np.random.default_rng([seed, sid]))
        cams = [h36m_camera(subject, c) for c in range(4)]
        positions_3d[subject], gt_2d[subject], det_2d[subject], det_conf[subject] = {}, {}, {}, {}
        for a_idx, (action, key) in enumerate(_action_keys(subactions)):
            if action not in actions:
                continue
            rng = np.random.default_rng([seed, sid, a_idx])
            ang, root, yaw = action_motion(action, rng, frames, offsets)
            pos17 = forward_kinematics(ang, root, yaw, offsets)
            positions_3d[subject][key] = to_32_joints(pos17).astype(np.float32)
            gts, dets, confs = [], [], []
            for cam in cams:
                px = project_to_2d(
                    world_to_camera(pos17, cam.orientation, cam.translation), cam.intrinsic
                )
                gts.append(px.astype(np.float32))
                det = np.concatenate([px, np.repeat(px[-1:], DET_EXTRA_FRAMES, 0)])
                sigma = det_sigma_px * rng.uniform(0.6, 1.6, (1, H36M.num_joints, 1))
                err = rng.normal(0.0, 1.0, det.shape) * sigma
                outlier = rng.random(det.shape[:2]) < outlier_prob
                err[outlier] += rng.normal(0.0, 40.0, (int(outlier.sum()), 2))
                dist = np.linalg.norm(err, axis=-1)
                confs.append((0.98 * np.exp(-0.5 * (dist / 15.0) ** 2)).astype(np.float32))
                dets.append((det + err).astype(np.float32))
            gt_2d[subject][key], det_2d[subject][key] = gts, dets
            det_conf[subject][key] = confs
    return positions_3d, gt_2d, det_2d, det_conf


def ways_out(out: str | Path) -> str:
    """The two ways out when ``out`` holds files the generator did not write."""
    return (
        "generate into an empty or new folder (--data.init_args.root=... / --out ...), or use "
        "these files as a dataset: --data.init_args.synthetic=false after python -m "
        f"datamodules.h36m prepare --root {out} --keypoints <source>"
    )


def generate_synthetic_h36m(
    out: str | Path = "data/synthetic_h36m",
    seed: int = 0,
    frames: int = 160,
    subjects: tuple[str, ...] = H36M_SUBJECTS,
    actions: tuple[str, ...] = H36M_ACTIONS,
    subactions: int = 2,
    det_sigma_px: float = 3.0,
    outlier_prob: float = 0.005,
) -> Path:
    """Write the three npz files and their pickle-free caches (``cache/gt``,
    ``cache/synthetic_det``) into ``out`` and return it (deterministic by ``seed``).

    Only into a missing or empty folder or one this generator marked (``GENERATED.json``);
    otherwise :class:`~datamodules.generated_folder.ForeignFolderError`. The caches are built
    from memory, so nothing is ever unpickled.
    """
    from datamodules.h36m import build_h36m_cache  # h36m imports this module lazily, too

    out = Path(out)
    expected = [FILE_3D] + [file_2d(s) for s in SOURCES]
    claim(out, GENERATOR, ways_out(out), expected)
    params = synthetic_params(
        seed, frames, subjects, actions, subactions, det_sigma_px, outlier_prob
    )
    write_marker(out, GENERATOR, GENERATOR_VERSION, params, complete=False)
    positions_3d, gt_2d, det_2d, det_conf = synthesize_h36m(
        seed, frames, subjects, actions, subactions, det_sigma_px, outlier_prob
    )
    write_3d_h36m(out, positions_3d)
    # the published GT file has no layout_name; the detection files do
    write_2d_h36m(out, "gt", gt_2d, layout_name=None)
    write_2d_h36m(out, "synthetic_det", det_2d, det_conf)
    build_h36m_cache(out, "gt", positions_3d, gt_2d, {})
    build_h36m_cache(out, "synthetic_det", positions_3d, det_2d, {"layout_name": "h36m"}, det_conf)
    write_marker(out, GENERATOR, GENERATOR_VERSION, params, complete=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m datamodules.synthetic_h36m",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="data/synthetic_h36m")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=160, help="frames per sequence (50 fps)")
    p.add_argument("--subjects", nargs="+", default=list(H36M_SUBJECTS))
    p.add_argument("--actions", nargs="+", default=list(H36M_ACTIONS))
    p.add_argument("--subactions", type=int, default=2)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    try:
        out = generate_synthetic_h36m(
            args.out, args.seed, args.frames, tuple(args.subjects), tuple(args.actions),
            args.subactions,
        )  # fmt: skip
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} (npz files and caches) in {time.perf_counter() - t0:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
