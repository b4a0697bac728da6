"""COCO 2017 person keypoints: top-down dataset and LightningDataModule.

Expected layout (the official one; ``DATA=synthetic`` builds the same layout from drawings)::

    root/annotations/person_keypoints_train2017.json
    root/annotations/person_keypoints_val2017.json
    root/train2017/*.jpg
    root/val2017/*.jpg
    root/person_detection_results/COCO_val2017_detections_AP_H_56_person.json   (optional)

Samples follow the official ``_load_coco_keypoint_annotation_kernal``: non-crowd person
instances with at least one labelled keypoint and a non-empty box after clipping to the image.
Validation/test boxes come from the GT or from a person-detection file in COCO results format.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch.utils.data import DataLoader, Dataset

from callbacks.user_error import BadInputError, exit_code
from datamodules.coco_transforms import AugmentConfig, crop_matrix, sample_augmentation, warp_sample
from datamodules.generated_folder import claim, is_current, owned_by
from datamodules.image_io import CorruptImageError, read_image, verify_images
from datamodules.sample_rng import current_rank, sample_rng
from datamodules.skeleton import COCO
from pose2d.cli_types import BoxSource, plain
from pose2d.heatmaps import encode_gaussian, heatmap_size_for, joints_to_heatmap_coords
from pose2d.transforms import box_to_center_scale

log = logging.getLogger(__name__)

SPLITS = ("train", "val")
DEFAULT_DETECTIONS = "person_detection_results/COCO_val2017_detections_AP_H_56_person.json"


def ann_path(root: str | Path, split: str) -> Path:
    return Path(root) / "annotations" / f"person_keypoints_{split}2017.json"


def image_dir(root: str | Path, split: str) -> Path:
    return Path(root) / f"{split}2017"


def check_layout(root: str | Path, split: str) -> None:
    """Raise one clear error when the COCO files for ``split`` are missing."""
    ann, imgs = ann_path(root, split), image_dir(root, split)
    missing = [str(p) for p in (ann, imgs) if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"COCO {split} data not found: missing {', '.join(missing)}. Expected under "
            f"{Path(root).resolve()}: annotations/person_keypoints_{{train,val}}2017.json and "
            "the image folders train2017/ and val2017/ (see docs/2d-data.md). To run without "
            "COCO use the synthetic set: make train-2d DATA=synthetic (= python -m pose2d fit "
            "--config configs/pose2d/synthetic.yaml)."
        )


def read_annotation_json(path: str | Path) -> dict:
    """A COCO keypoints annotation file, checked where it enters: not JSON, no ``images`` /
    ``annotations`` lists, or an entry without the fields we read is one line naming the file
    and the entry (:class:`BadInputError`)."""
    path = Path(path)
    hint = f"expected a COCO keypoints annotation file like {ann_path('<root>', 'val').name}"
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInputError(f"{path}: not a JSON file ({e}); {hint}") from e
    if not isinstance(data, dict):
        raise BadInputError(
            f"{path}: holds a JSON {type(data).__name__}, not an object with images and "
            f"annotations (a detection results list belongs in --data.val_boxes); {hint}"
        )
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            keys = ", ".join(list(data)[:8]) or "none"
            raise BadInputError(f"{path}: no {key!r} list (top-level keys: {keys}); {hint}")
    for i, im in enumerate(data["images"]):
        absent = [k for k in ("id", "file_name", "width", "height") if k not in im]
        if absent:
            raise BadInputError(
                f"{path}: images[{i}] (id {im.get('id', '?')}) has no {', '.join(absent)}; {hint}"
            )
    for i, a in enumerate(data["annotations"]):
        absent = [k for k in ("image_id", "bbox") if k not in a]
        if absent:
            raise BadInputError(
                f"{path}: annotations[{i}] (id {a.get('id', '?')}) has no {', '.join(absent)}; "
                f"{hint}"
            )
    return data


def load_gt_records(coco_json: dict, skeleton=COCO) -> dict[str, np.ndarray]:
    """Training-style records from a COCO keypoints dict (official sanitising), vectorised.

    Returns arrays over N instances: ``image_id`` (N,), ``file_name`` (N,) object,
    ``box`` (N, 4) clipped xywh, ``joints`` (N, J, 2), ``visible`` (N, J) in {0, 1},
    ``box_score`` (N,) ones.
    """
    imgs = {im["id"]: im for im in coco_json["images"]}
    person_ids = {c["id"] for c in coco_json.get("categories", []) if c.get("name") == "person"}
    person_ids = person_ids or {1}
    j = skeleton.num_joints
    ids, names, boxes, kps = [], [], [], []
    zero_size = []  # annotation ids with a zero-width/height box: a singular crop, dropped
    for a in coco_json["annotations"]:
        if a.get("iscrowd", 0) or a.get("category_id", 1) not in person_ids:
            continue
        im = imgs.get(a["image_id"])
        if im is None:
            continue
        k = np.asarray(a.get("keypoints", []), dtype=np.float64).reshape(-1, 3)
        if k.shape[0] != j or k.max() <= 0:  # official: max(keypoints) == 0 -> no keypoints
            continue
        x, y, w, h = a["bbox"]
        if not (w > 0 and h > 0):
            zero_size.append(a.get("id", "?"))
            continue
        x1, y1 = max(0.0, x), max(0.0, y)
        x2 = min(im["width"] - 1.0, x1 + max(0.0, w - 1.0))
        y2 = min(im["height"] - 1.0, y1 + max(0.0, h - 1.0))
        if a.get("area", 0) <= 0 or x2 < x1 or y2 < y1:
            continue
        ids.append(a["image_id"])
        names.append(im["file_name"])
        boxes.append([x1, y1, x2 - x1, y2 - y1])
        kps.append(k)
    if zero_size:
        rank_zero_warn(
            f"dropped {len(zero_size)} person annotations with a zero-width or zero-height box "
            f"(annotation ids {', '.join(map(str, zero_size[:5]))}"
            f"{', ...' if len(zero_size) > 5 else ''})"
        )
    kp = np.asarray(kps, dtype=np.float64).reshape(-1, j, 3)
    return {
        "image_id": np.asarray(ids, dtype=np.int64),
        "file_name": np.asarray(names, dtype=object),
        "box": np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        "joints": kp[..., :2],
        "visible": (kp[..., 2] > 0).astype(np.float32),  # v in {1, 2} -> 1 (official)
        "box_score": np.ones(len(ids), dtype=np.float32),
    }


def load_detection_records(
    det_file: str | Path, coco_json: dict, score_thresh: float = 0.0, num_joints: int = 17
) -> dict[str, np.ndarray]:
    """Person boxes from a COCO results file (``[{image_id, category_id, bbox, score}]``)."""
    det_file = Path(det_file)
    if not det_file.exists():
        raise FileNotFoundError(
            f"person detection file not found: {det_file}. Download "
            "COCO_val2017_detections_AP_H_56_person.json (see docs/2d-data.md) or use "
            "--data.val_boxes=gt"
        )
    try:
        dets = json.loads(det_file.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInputError(
            f"{det_file}: not a JSON file ({e}); expected a COCO results list"
        ) from e
    imgs = {im["id"]: im for im in coco_json["images"]}
    if not isinstance(dets, list) or not all(
        isinstance(d, dict) and {"image_id", "bbox", "score"} <= d.keys() for d in dets
    ):
        raise BadInputError(
            f"{det_file}: not a COCO results list [{{image_id, category_id, bbox, score}}, ...]"
        )
    dets = [
        d for d in dets if d.get("category_id", 1) == 1 and d["score"] >= score_thresh
    ]  # official: category 1 only, keep score >= image_thre
    sized = [d for d in dets if d["bbox"][2] > 0 and d["bbox"][3] > 0]
    if len(sized) < len(dets):  # a zero-size box is a singular crop
        rank_zero_warn(f"{det_file}: dropped {len(dets) - len(sized)} zero-size boxes")
        dets = sized
    unknown = [d["image_id"] for d in dets if d["image_id"] not in imgs]
    if unknown:
        raise ValueError(
            f"{det_file}: {len(unknown)} detections refer to images absent from the annotation "
            f"file (e.g. image_id {unknown[0]}); is it the right split?"
        )
    n = len(dets)
    return {
        "image_id": np.asarray([d["image_id"] for d in dets], dtype=np.int64),
        "file_name": np.asarray([imgs[d["image_id"]]["file_name"] for d in dets], dtype=object),
        "box": np.asarray([d["bbox"] for d in dets], dtype=np.float64).reshape(-1, 4),
        "joints": np.zeros((n, num_joints, 2)),
        "visible": np.zeros((n, num_joints), dtype=np.float32),
        "box_score": np.asarray([d["score"] for d in dets], dtype=np.float32),
    }


class CocoKeypoints(Dataset):
    """Top-down COCO keypoint crops.

    ``boxes``: ``"gt"`` or a detection results file. ``augment`` turns on the training
    augmentation. Each item is a dict of tensors (see docs/CONTRACTS.md, 2D batch).
    A sample whose image cannot be read is logged with its path and replaced by the next
    readable one (its own ``index`` is returned, so evaluation de-duplication stays correct;
    ``unreadable`` names the replaced one, so evaluation can report it). ``coco_json``: the
    already checked annotation dict (:func:`read_annotation_json`; None: read it here).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        input_size: tuple[int, int] = (192, 256),
        augment: bool = False,
        boxes: str = "gt",
        det_score_thresh: float = 0.0,
        sigma: float = 2.0,
        use_udp: bool = False,
        padding: float = 1.25,
        aug: AugmentConfig | None = None,
        max_bad_in_a_row: int = 50,
        coco_json: dict | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        check_layout(root, split)
        self.root, self.split = Path(root), split
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = heatmap_size_for(self.input_size)
        self.augment, self.sigma, self.use_udp = augment, float(sigma), use_udp
        self.aug = aug or AugmentConfig()
        self.aspect_ratio = self.input_size[0] / self.input_size[1]
        self.max_bad_in_a_row = max_bad_in_a_row
        self.skeleton = COCO
        self.ann_file = ann_path(root, split)
        if coco_json is None:
            coco_json = read_annotation_json(self.ann_file)
        if boxes == "gt":
            rec = load_gt_records(coco_json)
            self.box_source = "gt"
        else:
            rec = load_detection_records(boxes, coco_json, det_score_thresh)
            self.box_source = Path(boxes).name
        self.image_id = rec["image_id"]
        self.file_name = rec["file_name"]
        self.joints, self.visible, self.box_score = rec["joints"], rec["visible"], rec["box_score"]
        self.center, self.scale = box_to_center_scale(rec["box"], self.aspect_ratio, padding)
        self.bad_files: set[str] = set()
        self.rank = 0  # global DDP rank, set by the DataModule's loader (augmentation streams)

    def __len__(self) -> int:
        return len(self.image_id)

    def image_path(self, i: int) -> Path:
        return image_dir(self.root, self.split) / self.file_name[i]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        for attempt in range(min(self.max_bad_in_a_row, len(self))):
            i = (index + attempt) % len(self)
            path = self.image_path(i)
            try:
                image = read_image(path)
            except CorruptImageError as e:
                if str(path) not in self.bad_files:
                    self.bad_files.add(str(path))
                    log.warning("skipping unreadable image (sample %d): %s", i, e)
                continue
            sample = self._make_sample(i, image)
            # which requested sample this one replaces: evaluation reports it as skipped
            sample["unreadable"] = torch.tensor(index if attempt else -1, dtype=torch.int64)
            return sample
        raise RuntimeError(
            f"{self.max_bad_in_a_row} unreadable images in a row from sample {index} "
            f"(first: {self.image_path(index)}); run `python -m datamodules.coco verify "
            f"--root {self.root}` to list bad files"
        )

    def _rng(self) -> np.random.Generator:
        # Distinct per DDP rank, DataLoader worker and epoch, reproducible with seed_everything
        # (datamodules/sample_rng.py); numpy's global state is the same in every worker.
        return sample_rng(self.rank)

    def _make_sample(self, i: int, image: np.ndarray) -> dict[str, torch.Tensor]:
        joints, vis = self.joints[i], self.visible[i]
        center, scale = self.center[i], self.scale[i]
        rot, flip = 0.0, False
        if self.augment:
            center, scale, rot, flip = sample_augmentation(
                joints, vis, center, scale, self._rng(), self.aug, self.aspect_ratio
            )
        m = crop_matrix(center, scale, rot, flip, self.input_size, self.use_udp)
        img, pts, vis = warp_sample(image, joints, vis, m, self.input_size, flip, self.skeleton)
        hm_pts = joints_to_heatmap_coords(pts, self.input_size, self.heatmap_size, self.use_udp)
        heatmap, weight = encode_gaussian(
            hm_pts, vis, self.heatmap_size, self.sigma, unbiased=self.use_udp
        )
        return {
            "image": torch.from_numpy(img),
            "heatmap": torch.from_numpy(heatmap),
            "target_weight": torch.from_numpy(weight),
            "center": torch.tensor(self.center[i], dtype=torch.float32),
            "scale": torch.tensor(self.scale[i], dtype=torch.float32),
            "image_id": torch.tensor(int(self.image_id[i]), dtype=torch.int64),
            "box_score": torch.tensor(float(self.box_score[i]), dtype=torch.float32),
            "area": torch.tensor(float(np.prod(self.scale[i])), dtype=torch.float32),
            "index": torch.tensor(i, dtype=torch.int64),
        }

    def verify(self) -> list[tuple[str, str]]:
        """Decode every distinct image of this split; ``(path, reason)`` for the bad ones."""
        names = sorted(set(self.file_name.tolist()))
        return verify_images(image_dir(self.root, self.split) / n for n in names)


def _worker_init(_: int) -> None:
    cv2.setNumThreads(0)  # OpenCV's own thread pool fights the DataLoader workers


class CocoKeypointsDataModule(pl.LightningDataModule):
    """COCO 2017 person keypoints for top-down training (all arguments plain types for the CLI).

    ``synthetic=True`` generates the synthetic COCO-format set into ``root`` when missing (only
    into a missing, empty or generator-marked folder; a complete COCO layout is used as it is).
    ``center``/``scale`` in batches are the un-augmented crop in image px; ``area`` = scale_w ·
    scale_h (the official value used by OKS-NMS). Augmentation defaults: official HRNet recipe.

    Args:
        root: COCO folder (annotations/, train2017/, val2017/, person_detection_results/).
        input_size: network input [w, h] ([192, 256] or [288, 384]); heatmaps are input / 4.
        batch_size: training images per GPU.
        val_batch_size: validation/test images per GPU (None: batch_size).
        num_workers: DataLoader worker processes.
        pin_memory: pinned host memory for faster GPU copies (ignored without CUDA).
        val_boxes: validation person boxes: gt, or a COCO results-format detection .json
            (absolute, or relative to root).
        det_score_thresh: drop detected boxes scoring below this.
        test_boxes: boxes for test/predict (gt or a .json; None: val_boxes).
        predict_images: a folder of images for predict instead of val2017 (None: val2017 with
            test_boxes); no annotations needed.
        predict_boxes: person boxes of predict_images: full (the whole image) or
            coco_json:PATH[,min_score=S][,map=FILE] (matched by image id).
        synthetic: generate the synthetic COCO-format set into root when it is missing.
        synthetic_num_train: synthetic training images.
        synthetic_num_val: synthetic validation images.
        synthetic_seed: seed of the synthetic generator.
        flip_prob: probability of a horizontal flip (training).
        scale_factor: random scale range ±scale_factor (training).
        rot_factor: random rotation range ±rot_factor degrees (training).
        rot_prob: probability of applying the rotation (training).
        half_body_prob: probability of the half-body crop (training).
        half_body_min_joints: half-body only with more than this many visible joints.
        half_body_scale: box enlargement of the half-body crop.
        sigma: Gaussian sigma of the target heatmaps (heatmap px).
        use_udp: unbiased data processing (UDP) crop geometry and unbiased targets.
        padding: box enlargement before cropping (official 1.25).
        allow_skipped: a validate/test run whose images could not all be read still exits with
            status 0 (its metrics always report ``skipped_images`` / ``skipped_persons``).
    """

    def __init__(
        self,
        root: str = "data/coco",
        input_size: list[int] | tuple[int, int] = (192, 256),
        batch_size: int = 32,
        val_batch_size: int | None = None,
        num_workers: int = 4,
        pin_memory: bool = True,
        val_boxes: BoxSource = "gt",
        det_score_thresh: float = 0.0,
        test_boxes: BoxSource | None = None,
        predict_images: str | None = None,
        predict_boxes: str = "full",
        synthetic: bool = False,
        synthetic_num_train: int = 200,
        synthetic_num_val: int = 50,
        synthetic_seed: int = 0,
        flip_prob: float = 0.5,
        scale_factor: float = 0.35,
        rot_factor: float = 45.0,
        rot_prob: float = 0.6,
        half_body_prob: float = 0.3,
        half_body_min_joints: int = 8,
        half_body_scale: float = 1.5,
        sigma: float = 2.0,
        use_udp: bool = False,
        padding: float = 1.25,
        allow_skipped: bool = False,
    ) -> None:
        super().__init__()
        val_boxes, test_boxes = plain(val_boxes), plain(test_boxes)  # str subclasses when parsed
        self.save_hyperparameters()
        self.root = root
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = heatmap_size_for(self.input_size)
        self.skeleton = COCO
        self.aug = AugmentConfig(
            flip_prob, scale_factor, rot_factor, rot_prob, half_body_prob,
            half_body_min_joints, half_body_scale,
        )  # fmt: skip
        self.train_set: CocoKeypoints | None = None
        self.val_set: CocoKeypoints | None = None
        self._checked_json: dict[str, dict] = {}
        self.test_set: CocoKeypoints | None = None
        self.predict_set: Dataset | None = None

    # -- paths ---------------------------------------------------------------------------------
    def ann_file(self, split: str) -> str:
        """Annotation json of ``split`` ("train", "val"/"validate"/"test" → val2017)."""
        return str(ann_path(self.root, "train" if split in ("train", "fit") else "val"))

    def _boxes_path(self, boxes: str) -> str:
        if boxes == "gt":
            return boxes
        p = Path(boxes)
        return str(p if p.is_absolute() or p.exists() else Path(self.root) / p)

    @property
    def box_source(self) -> str:
        """``"gt"`` or the detection file name used for validation boxes (log it next to AP)."""
        b = self.hparams.val_boxes
        return "gt" if b == "gt" else Path(b).name

    @property
    def test_box_source(self) -> str:
        """Box source of ``test``/``predict`` (differs from :attr:`box_source` only when
        ``test_boxes`` is set)."""
        b = self.hparams.test_boxes or self.hparams.val_boxes
        return "gt" if b == "gt" else Path(b).name

    def _must_generate(self) -> bool:
        """Whether ``prepare_data`` (re)generates the synthetic set; raises
        :class:`~datamodules.generated_folder.ForeignFolderError` when it would have to write
        over files it did not write (e.g. a train json without its val json)."""
        from datamodules import synthetic_coco as syn

        hp = self.hparams
        if not hp.synthetic:
            return False
        params = syn.synthetic_params(
            hp.synthetic_num_train, hp.synthetic_num_val, hp.synthetic_seed
        )
        if owned_by(self.root, syn.GENERATOR):
            return not is_current(self.root, syn.GENERATOR, syn.GENERATOR_VERSION, params)
        if all(
            ann_path(self.root, s).is_file() and image_dir(self.root, s).is_dir() for s in SPLITS
        ):
            return False  # a complete COCO-layout set: read (json and images) as it is
        claim(self.root, syn.GENERATOR, syn.ways_out(self.root), syn.OUTPUTS)
        return True

    def check_files(self, stage: str | None = None) -> None:
        """Raise the missing-data error up front (the CLI calls this before a run, and its
        logger, starts); the synthetic set is generated by ``prepare_data``, so never missing,
        unless its folder holds someone else's files."""
        if stage == "predict" and self.hparams.predict_images:
            return  # an image folder: no COCO files needed (checked by ImageFolderCrops)
        if self.hparams.synthetic:
            self._must_generate()
            return
        for split in ("train", "val") if stage in (None, "fit") else ("val",):
            check_layout(self.root, split)
            # parsed (and checked) once, before any run folder exists; setup() reuses it
            self._checked_json[split] = read_annotation_json(ann_path(self.root, split))

    # -- Lightning hooks -------------------------------------------------------------------------
    def prepare_data(self) -> None:
        predicting = self.trainer is not None and self.trainer.state.fn == "predict"
        if predicting and self.hparams.predict_images:
            return  # predicting on an image folder needs no dataset
        if self._must_generate():
            from datamodules.synthetic_coco import generate_synthetic_coco

            generate_synthetic_coco(
                self.root,
                num_train=self.hparams.synthetic_num_train,
                num_val=self.hparams.synthetic_num_val,
                seed=self.hparams.synthetic_seed,
            )

    def _dataset(self, split: str, augment: bool, boxes: str) -> CocoKeypoints:
        hp = self.hparams
        return CocoKeypoints(
            self.root, split, self.input_size, augment=augment, boxes=self._boxes_path(boxes),
            det_score_thresh=hp.det_score_thresh, sigma=hp.sigma, use_udp=hp.use_udp,
            padding=hp.padding, aug=self.aug, coco_json=self._checked_json.pop(split, None),
        )  # fmt: skip

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self._dataset("train", True, "gt")
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self._dataset("val", False, hp.val_boxes)
        if stage == "predict" and hp.predict_images and self.predict_set is None:
            from datamodules.image_folder import ImageFolderCrops

            self.predict_set = ImageFolderCrops(
                hp.predict_images, self.input_size, hp.predict_boxes, hp.padding, hp.use_udp
            )
            return
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = self._dataset("val", False, hp.test_boxes or hp.val_boxes)

    def describe_sample(self, batch: dict, i: int) -> str:
        """Where sample ``i`` of a training batch comes from (image file, image id): named in
        the non-finite-input error of ``callbacks.nonfinite``."""
        ds, k = self.train_set, int(batch["index"][i])
        return f"{ds.image_path(k)} (image id {int(ds.image_id[k])})"

    def _loader(self, ds: Dataset, train: bool) -> DataLoader:
        hp = self.hparams
        ds.rank = current_rank(self.trainer)
        workers = hp.num_workers
        if train and len(ds) < hp.batch_size:
            rank_zero_warn(
                f"batch_size {hp.batch_size} is larger than the {len(ds)} training samples of "
                f"{ann_path(self.root, 'train')}: every epoch is one step on the whole split; "
                "lower --data.batch_size"
            )
        return DataLoader(
            ds,
            batch_size=hp.batch_size if train else (hp.val_batch_size or hp.batch_size),
            shuffle=train,
            drop_last=train and len(ds) > hp.batch_size,
            num_workers=workers,
            pin_memory=hp.pin_memory and torch.cuda.is_available(),
            persistent_workers=workers > 0,
            worker_init_fn=_worker_init if workers > 0 else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_set or self.test_set, False)

    def augmentation(self) -> dict:
        return asdict(self.aug)


def benchmark(ds: CocoKeypoints, num: int = 200) -> tuple[float, float]:
    """``ds[i]`` rate in this process (one worker): (samples per CPU-second, samples per
    wall-second). The CPU-time rate is what one worker sustains on an idle core; the wall rate
    also counts waiting for a busy machine."""
    import time

    for i in range(min(5, len(ds))):  # warm-up: page cache, lazy imports
        ds[i]
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(num):
        ds[i % len(ds)]
    return num / (time.process_time() - cpu), num / (time.perf_counter() - wall)


def main(argv: list[str] | None = None) -> int:
    """``python -m datamodules.coco verify|stats|bench --root data/coco [--split val]``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m datamodules.coco")
    ap.add_argument("command", choices=["verify", "stats", "bench"])
    ap.add_argument("--root", default="data/coco")
    ap.add_argument("--split", choices=SPLITS, action="append")
    ap.add_argument("--input-size", type=int, nargs=2, default=[192, 256], metavar=("W", "H"))
    args = ap.parse_args(argv)
    if args.command == "bench":
        cv2.setNumThreads(1)
        torch.set_num_threads(1)
        ds = CocoKeypoints(args.root, "train", args.input_size, augment=True)
        cpu_rate, wall_rate = benchmark(ds)
        print(
            f"train, augmented, {args.input_size[1]}x{args.input_size[0]}: {cpu_rate:.0f} "
            f"samples per CPU-second, {wall_rate:.0f} per wall-second (one process)"
        )
        return 0
    status = 0
    for split in args.split or list(SPLITS):
        ds = CocoKeypoints(args.root, split)
        print(f"{split}: {len(ds)} samples from {len(set(ds.file_name.tolist()))} images")
        if args.command == "verify":
            bad = ds.verify()
            for path, reason in bad:
                print(f"BAD {path}: {reason}")
            print(f"{split}: {len(bad)} unreadable images")
            status |= int(bool(bad))
    return status


if __name__ == "__main__":
    sys.exit(exit_code(main))
