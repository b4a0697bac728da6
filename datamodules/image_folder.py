"""Top-down crops of a folder of images for ``python -m pose2d predict`` (no annotations).

One sample per person box. Boxes come from a ``pose2d.boxes`` spec: ``full`` (the whole image,
one box each) or ``coco_json:PATH[,min_score=S][,map=FILE]`` (matched by image id, see
:class:`pose2d.boxes.CocoJsonBoxes`). The crop geometry is the evaluation one (box → centre and
scale with the 1.25 padding and the network aspect ratio, no augmentation), so the keypoints are
what ``validate`` would score. ``image_id`` is the COCO number of a ``%012d.jpg`` name, else the
image's position in the sorted folder; :attr:`ImageFolderCrops.images` maps ids to file names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from callbacks.user_error import UserError
from datamodules.coco_transforms import crop_matrix, warp_sample
from datamodules.frames import IMAGE_SUFFIXES
from datamodules.image_io import read_image
from datamodules.skeleton import COCO
from pose2d.boxes import CocoJsonBoxes, FullFrameBoxes, coco_image_id, make_box_source
from pose2d.transforms import box_to_center_scale


class ImageFolderCrops(Dataset):
    """Crops of every person box in ``folder`` (images sorted by name).

    Args:
        folder: the image folder.
        input_size: crop ``(w, h)`` of the network.
        boxes: ``full`` or ``coco_json:PATH[,min_score=S][,map=FILE]``.
        padding: box enlargement (official 1.25).
        use_udp: UDP crop geometry (with ``decode_method=udp``).
    """

    def __init__(
        self,
        folder: str | Path,
        input_size: tuple[int, int] = (192, 256),
        boxes: str = "full",
        padding: float = 1.25,
        use_udp: bool = False,
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.folder}")
        self.paths = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise UserError(f"{self.folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.padding, self.use_udp = padding, use_udp
        self.image_ids = [
            coco_image_id(p.name) if coco_image_id(p.name) is not None else i
            for i, p in enumerate(self.paths)
        ]
        source = make_box_source(boxes)
        if isinstance(source, FullFrameBoxes):
            self.samples = [(i, None) for i in range(len(self.paths))]
        elif isinstance(source, CocoJsonBoxes):
            source.check_coverage([p.name for p in self.paths])
            self.samples = [
                (i, box) for i, p in enumerate(self.paths) for box in source(i, p.name, None)
            ]
        else:
            raise UserError(f"--data.predict_boxes {boxes}: use full or coco_json:PATH")

    @property
    def images(self) -> list[dict]:
        """``[{"id", "file_name"}]`` of the folder (the COCO ``images`` list)."""
        return [{"id": int(i), "file_name": p.name} for i, p in zip(self.image_ids, self.paths,
                                                                      strict=True)]  # fmt: skip

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        i, box = self.samples[index]
        image = read_image(self.paths[i])  # BGR, like the COCO dataset
        if box is None:
            h, w = image.shape[:2]
            box = np.array([0.0, 0.0, w, h, 1.0])
        center, scale = box_to_center_scale(
            np.asarray(box[:4], np.float64), self.input_size[0] / self.input_size[1], self.padding
        )
        m = crop_matrix(center, scale, 0.0, False, self.input_size, self.use_udp)
        joints, vis = np.zeros((COCO.num_joints, 2)), np.zeros(COCO.num_joints, np.float32)
        img, _, _ = warp_sample(image, joints, vis, m, self.input_size, False, COCO)
        return {
            "image": torch.from_numpy(img),
            "center": torch.tensor(center, dtype=torch.float32),
            "scale": torch.tensor(scale, dtype=torch.float32),
            "image_id": torch.tensor(int(self.image_ids[i]), dtype=torch.int64),
            "box_score": torch.tensor(float(box[4]), dtype=torch.float32),
            "area": torch.tensor(float(np.prod(scale)), dtype=torch.float32),
            "index": torch.tensor(index, dtype=torch.int64),
        }
