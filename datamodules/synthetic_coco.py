"""Synthetic COCO-format person keypoints: real JPEGs + COCO json, same layout as COCO 2017.

Each image holds 1-3 articulated stick-and-blob figures on a textured background. Left limbs
are drawn in warm colours and right limbs in cool ones, so left/right is learnable from
appearance (as it is from real bodies). Some joints are covered by an occluding rectangle
(labelled, v=1) and figures are truncated at the borders (joints outside: 0,0,0). A few crowd
regions and zero-keypoint people exercise the loader's filters. A detection results file with
jittered GT boxes and some false positives mimics ``COCO_val2017_detections_AP_H_56_person.json``.
The generator writes only into a missing, empty or its own folder (manifest ``GENERATED.json``,
see ``datamodules.generated_folder``).

``python -m datamodules.synthetic_coco --out data/synthetic_coco --num-train 200 --num-val 50``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from callbacks.user_error import UserError
from datamodules.generated_folder import claim, write_marker
from datamodules.skeleton import COCO

IMAGE_SIZE = (320, 240)  # (w, h)
DET_FILE = "person_detection_results/synthetic_val2017_detections.json"
SPLIT_ID_BASE = {"train": 0, "val": 1_000_000}

# BGR colours: warm for the person's left, cool for the right.
_LEFT_ARM, _LEFT_LEG = (40, 40, 230), (30, 150, 250)
_RIGHT_ARM, _RIGHT_LEG = (230, 90, 30), (200, 200, 40)
_TORSO, _HEAD = (90, 160, 60), (150, 190, 235)


def _rot(v: np.ndarray, a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def random_pose(rng: np.random.Generator, center: np.ndarray, torso: float) -> np.ndarray:
    """A plausible front-facing 2D COCO pose ``(17, 2)`` (image px, y down).

    ``torso`` = hip-centre to neck length in px; limb angles are drawn from loose ranges.
    """
    n = COCO.index
    tilt = rng.normal(0, 0.25)
    up = _rot(np.array([0.0, -1.0]), tilt)
    side = np.array([-up[1], up[0]])  # image-right when upright; the person's left (facing us)
    hip_c = center + up * (-0.1 * torso)
    neck = hip_c + up * torso
    j = np.zeros((17, 2))
    j[n("left_shoulder")], j[n("right_shoulder")] = (
        neck + side * 0.42 * torso,
        neck - side * 0.42 * torso,
    )
    j[n("left_hip")], j[n("right_hip")] = hip_c + side * 0.28 * torso, hip_c - side * 0.28 * torso
    nose = neck + up * 0.38 * torso + side * rng.normal(0, 0.05) * torso
    j[n("nose")] = nose
    j[n("left_eye")], j[n("right_eye")] = (
        nose + up * 0.09 * torso + side * 0.08 * torso,
        nose + up * 0.09 * torso - side * 0.08 * torso,
    )
    j[n("left_ear")], j[n("right_ear")] = (
        nose + up * 0.04 * torso + side * 0.17 * torso,
        nose + up * 0.04 * torso - side * 0.17 * torso,
    )
    for s, sign in (("left", 1.0), ("right", -1.0)):
        # Arms hang down and swing out (sign mirrors toward the person's own side).
        a1 = tilt + sign * rng.uniform(-0.4, 1.8)
        a2 = a1 + sign * rng.uniform(-0.3, 1.6)
        elbow = j[n(f"{s}_shoulder")] + _rot(np.array([0.0, 0.55 * torso]), -a1)
        j[n(f"{s}_elbow")] = elbow
        j[n(f"{s}_wrist")] = elbow + _rot(np.array([0.0, 0.5 * torso]), -a2)
        l1 = tilt + sign * rng.uniform(-0.15, 0.7)
        l2 = l1 + rng.uniform(-0.6, 0.6)
        knee = j[n(f"{s}_hip")] + _rot(np.array([0.0, 0.62 * torso]), -l1)
        j[n(f"{s}_knee")] = knee
        j[n(f"{s}_ankle")] = knee + _rot(np.array([0.0, 0.6 * torso]), -l2)
    return j


def _limb_colour(a: int, b: int) -> tuple[int, int, int]:
    names = COCO.joint_names[a] + COCO.joint_names[b]
    arm = any(k in names for k in ("shoulder", "elbow", "wrist"))
    leg = any(k in names for k in ("knee", "ankle"))
    if "left" in COCO.joint_names[b] and (arm or leg):
        return _LEFT_ARM if arm and not leg else _LEFT_LEG
    if "right" in COCO.joint_names[b] and (arm or leg):
        return _RIGHT_ARM if arm and not leg else _RIGHT_LEG
    return _TORSO


def draw_figure(img: np.ndarray, joints: np.ndarray, torso: float, rng: np.random.Generator):
    """Draw a figure in place; returns nothing (joints in image px)."""
    n = COCO.index
    th = max(2, int(round(0.13 * torso)))
    jit = rng.integers(-25, 26, size=3)
    shade = lambda c: tuple(int(np.clip(v + d, 0, 255)) for v, d in zip(c, jit, strict=True))  # noqa: E731
    torso_poly = joints[[n("left_shoulder"), n("right_shoulder"), n("right_hip"), n("left_hip")]]
    cv2.fillConvexPoly(img, np.round(torso_poly).astype(np.int32), shade(_TORSO), cv2.LINE_AA)
    for a, b in COCO.limbs:
        names = COCO.joint_names[a] + COCO.joint_names[b]
        if any(k in names for k in ("eye", "ear", "nose")) or (a, b) in ((5, 6), (11, 12)):
            continue
        pa, pb = np.round(joints[a]).astype(int), np.round(joints[b]).astype(int)
        cv2.line(img, tuple(pa), tuple(pb), shade(_limb_colour(a, b)), th, cv2.LINE_AA)
    head_c = 0.5 * (joints[n("left_ear")] + joints[n("right_ear")])
    r = max(3, int(0.22 * torso))
    cv2.circle(img, tuple(np.round(head_c).astype(int)), r, shade(_HEAD), -1, cv2.LINE_AA)
    dot = max(1, int(0.04 * torso))
    for name, col in (
        ("left_eye", (0, 0, 160)),
        ("right_eye", (160, 0, 0)),
        ("nose", (40, 40, 40)),
    ):
        cv2.circle(img, tuple(np.round(joints[n(name)]).astype(int)), dot, col, -1, cv2.LINE_AA)
    for name, col in (("left_ear", _LEFT_ARM), ("right_ear", _RIGHT_ARM)):
        cv2.circle(img, tuple(np.round(joints[n(name)]).astype(int)), dot + 1, col, -1)
    for j in range(5, 17):  # joint markers: darker dots make the joint centres precise
        c = tuple(int(v * 0.5) for v in _limb_colour(max(j - 2, 0), j))
        cv2.circle(img, tuple(np.round(joints[j]).astype(int)), max(1, th // 2), c, -1)


def textured_background(rng: np.random.Generator, size_wh: tuple[int, int]) -> np.ndarray:
    """Gradient + low-frequency noise + random shapes, BGR uint8 ``(h, w, 3)``."""
    w, h = size_wh
    base = rng.uniform(40, 220, size=3)
    grad = rng.uniform(-60, 60, size=(2, 3))
    yy, xx = np.mgrid[0:h, 0:w]
    img = base + (xx[..., None] / w) * grad[0] + (yy[..., None] / h) * grad[1]
    coarse = rng.normal(0, 25, size=(h // 16 + 1, w // 16 + 1, 3))
    img += cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 6, size=img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(2, 7)):
        col = tuple(int(c) for c in rng.integers(0, 256, size=3))
        p = rng.integers(0, [w, h])
        if rng.random() < 0.5:
            q = p + rng.integers(10, 80, size=2)
            cv2.rectangle(img, tuple(int(v) for v in p), tuple(int(v) for v in q), col, -1)
        else:
            cv2.circle(img, tuple(int(v) for v in p), int(rng.integers(5, 40)), col, -1)
    return img


def _person_box(joints: np.ndarray, torso: float, size_wh: tuple[int, int]) -> list[float]:
    pad = 0.25 * torso
    lo = np.maximum(joints.min(0) - pad, 0)
    hi = np.minimum(joints.max(0) + pad, np.array(size_wh) - 1)
    return [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]


def make_image(rng: np.random.Generator, image_id: int, size_wh: tuple[int, int] = IMAGE_SIZE):
    """One image and its annotations (list of COCO annotation dicts without ids)."""
    w, h = size_wh
    img = textured_background(rng, size_wh)
    anns = []
    for _ in range(int(rng.integers(1, 4))):
        torso = float(rng.uniform(18, 55))
        # Centres may fall near or past the border: truncated people.
        center = rng.uniform([-0.05 * w, 0.1 * h], [1.05 * w, 0.95 * h])
        joints = random_pose(rng, center, torso)
        draw_figure(img, joints, torso, rng)
        inside = (joints[:, 0] >= 0) & (joints[:, 0] < w) & (joints[:, 1] >= 0) & (joints[:, 1] < h)
        vis = np.where(inside, 2, 0)
        anns.append({"joints": joints, "vis": vis, "torso": torso})
    # Occluder: labelled joints under it become v=1 (annotated but not visible).
    if rng.random() < 0.5:
        p = rng.integers(0, [w, h])
        q = p + rng.integers(20, 90, size=2)
        cv2.rectangle(img, tuple(int(v) for v in p), tuple(int(v) for v in q),
                      tuple(int(c) for c in rng.integers(0, 256, 3)), -1)  # fmt: skip
        for a in anns:
            under = np.all((a["joints"] >= p) & (a["joints"] <= q), axis=1) & (a["vis"] > 0)
            a["vis"] = np.where(under, 1, a["vis"])
    out = []
    for a in anns:
        vis = a["vis"]
        if not vis.any():
            continue
        kp = np.concatenate([np.where(vis[:, None] > 0, a["joints"], 0.0), vis[:, None]], 1)
        box = _person_box(a["joints"][vis > 0], a["torso"], size_wh)
        out.append({
            "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "keypoints": [round(float(v), 2) for v in kp.reshape(-1)],
            "num_keypoints": int((vis > 0).sum()), "bbox": [round(v, 2) for v in box],
            "area": round(box[2] * box[3] * 0.55, 2),
        })  # fmt: skip
    # Filter fodder: a crowd region and a tiny unlabelled person (COCO has both).
    r = rng.random()
    if r < 0.1:
        box = [float(v) for v in rng.uniform([0, 0, 30, 20], [w / 2, h / 2, 120, 60])]
        out.append({"image_id": image_id, "category_id": 1, "iscrowd": 1, "keypoints": [0] * 51,
                    "num_keypoints": 0, "bbox": box, "area": box[2] * box[3]})  # fmt: skip
    elif r < 0.2:
        p = rng.uniform([10, 10], [w - 20, h - 20])
        cv2.ellipse(img, tuple(int(v) for v in p), (3, 7), 0, 0, 360, _TORSO, -1)
        out.append({"image_id": image_id, "category_id": 1, "iscrowd": 0, "keypoints": [0] * 51,
                    "num_keypoints": 0, "bbox": [float(p[0] - 4), float(p[1] - 8), 8.0, 16.0],
                    "area": 90.0})  # fmt: skip
    return img, out


def _categories() -> list[dict]:
    return [{
        "id": 1, "name": "person", "supercategory": "person",
        "keypoints": list(COCO.joint_names),
        "skeleton": [[a + 1, b + 1] for a, b in COCO.limbs],  # 1-based, as in COCO
    }]  # fmt: skip


def generate_split(
    out: Path, split: str, num_images: int, seed: int, size_wh: tuple[int, int] = IMAGE_SIZE
) -> dict:
    """Write ``out/{split}2017/*.jpg`` and return the COCO dict (not yet saved)."""
    img_dir = out / f"{split}2017"
    img_dir.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(num_images):
        image_id = SPLIT_ID_BASE[split] + i + 1
        # One generator per image: output is independent of num_images and of order.
        rng = np.random.default_rng([seed, SPLIT_ID_BASE[split], i])
        img, img_anns = make_image(rng, image_id, size_wh)
        name = f"{image_id:012d}.jpg"
        if not cv2.imwrite(str(img_dir / name), img, [cv2.IMWRITE_JPEG_QUALITY, 92]):
            raise OSError(f"could not write {img_dir / name}")
        images.append({"id": image_id, "file_name": name, "width": size_wh[0],
                       "height": size_wh[1]})  # fmt: skip
        for a in img_anns:
            a["id"] = len(anns) + 1 + SPLIT_ID_BASE[split]
            anns.append(a)
    return {
        "info": {"description": f"synthetic COCO-format person keypoints (seed {seed})"},
        "images": images, "annotations": anns, "categories": _categories(),
    }  # fmt: skip


def synthetic_detections(coco: dict, seed: int, size_wh: tuple[int, int] = IMAGE_SIZE) -> list:
    """Jittered GT person boxes with scores plus a few low-score false positives."""
    rng = np.random.default_rng([seed, 7])
    dets = []
    for a in coco["annotations"]:
        if a["iscrowd"] or a["num_keypoints"] == 0:
            continue
        x, y, w, h = a["bbox"]
        jx, jy, jw, jh = rng.normal(0, 0.06, size=4)
        box = [x + jx * w, y + jy * h, w * (1 + jw), h * (1 + jh)]
        dets.append({"image_id": a["image_id"], "category_id": 1,
                     "bbox": [round(float(v), 2) for v in box],
                     "score": round(float(rng.uniform(0.5, 1.0)), 4)})  # fmt: skip
    for im in coco["images"]:
        if rng.random() < 0.3:
            box = rng.uniform([0, 0, 20, 40], [size_wh[0] - 30, size_wh[1] - 50, 80, 160])
            dets.append({"image_id": im["id"], "category_id": 1,
                         "bbox": [round(float(v), 2) for v in box],
                         "score": round(float(rng.uniform(0.02, 0.4)), 4)})  # fmt: skip
    return dets


GENERATOR = "datamodules.synthetic_coco"
GENERATOR_VERSION = 1
OUTPUTS = (
    "annotations/person_keypoints_train2017.json",
    "annotations/person_keypoints_val2017.json",
    "train2017",
    "val2017",
    DET_FILE,
)


def synthetic_params(num_train: int = 200, num_val: int = 50, seed: int = 0) -> dict:
    """The generator's parameters as stored in its manifest."""
    return {"num_train": int(num_train), "num_val": int(num_val), "seed": int(seed)}


def ways_out(out: str | Path) -> str:
    """The two ways out when ``out`` holds files the generator did not write."""
    return (
        "generate into an empty or new folder (--data.root=... / --out ...), or use these files "
        f"as a COCO-layout dataset with --data.synthetic=false (needs {out}/annotations/"
        "person_keypoints_{train,val}2017.json, train2017/ and val2017/)"
    )


def _write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def generate_synthetic_coco(
    out: str | Path, num_train: int = 200, num_val: int = 50, seed: int = 0
) -> Path:
    """Generate the full synthetic set under ``out`` (COCO 2017 layout). Returns ``out``.

    Only into a missing or empty folder or one this generator marked (``GENERATED.json``,
    written last); otherwise :class:`~datamodules.generated_folder.ForeignFolderError`.
    """
    out = Path(out)
    claim(out, GENERATOR, ways_out(out), OUTPUTS)
    params = synthetic_params(num_train, num_val, seed)
    write_marker(out, GENERATOR, GENERATOR_VERSION, params, complete=False)
    for split, n in (("train", num_train), ("val", num_val)):
        coco = generate_split(out, split, n, seed)
        _write_json_atomic(out / "annotations" / f"person_keypoints_{split}2017.json", coco)
        if split == "val":
            _write_json_atomic(out / DET_FILE, synthetic_detections(coco, seed))
    write_marker(out, GENERATOR, GENERATOR_VERSION, params, complete=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m datamodules.synthetic_coco", description=__doc__)
    ap.add_argument("--out", default="data/synthetic_coco")
    ap.add_argument("--num-train", type=int, default=200)
    ap.add_argument("--num-val", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        out = generate_synthetic_coco(args.out, args.num_train, args.num_val, args.seed)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote synthetic COCO ({args.num_train} train / {args.num_val} val images) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
