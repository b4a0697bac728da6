"""COCO inputs are checked where they enter, and an evaluation that could not read every image
says so in metrics.json, the log and the Table I row, and exits with status 2 unless allowed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from callbacks.user_error import BadInputError
from datamodules.coco import CocoKeypoints
from datamodules.synthetic_coco import generate_synthetic_coco
from pose2d.__main__ import cli

TINY = ["--model.width=8", "--model.num_blocks=1", "--model.cam_blocks=1",
        "--model.stem_channels=8", "--data.input_size=[64,64]", "--data.num_workers=0",
        "--data.batch_size=4", "--trainer.enable_progress_bar=false",
        "--trainer.logger=false", "--data.synthetic=false"]  # fmt: skip


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco") / "syn"
    generate_synthetic_coco(root, num_train=2, num_val=4, seed=3)
    return root


def _persons_in(root, file_name) -> int:
    ds = CocoKeypoints(root, "val", (64, 64))
    return int(np.sum(ds.file_name == file_name))


def test_unreadable_val_images_make_a_partial_evaluation(coco, tmp_path, capsys):
    ann = json.loads((coco / "annotations" / "person_keypoints_val2017.json").read_text())
    bad = ann["images"][1]["file_name"]
    persons = _persons_in(coco, bad)
    assert persons >= 1
    image = coco / "val2017" / bad
    good = image.read_bytes()
    image.write_bytes(b"not a jpeg")
    try:
        run = tmp_path / "eval"
        rc = cli(["validate", "--config", "configs/pose2d/synthetic.yaml", f"--data.root={coco}",
                  *TINY, f"--run.dir={run}"])  # fmt: skip
        err = capsys.readouterr().err
        assert rc == 2
        line = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert line == [
            f"error: val: 1 images under {coco} could not be read, so {persons} persons were "
            f"not scored and the metrics in {run / 'metrics.json'} are partial (they say so: "
            f"val/skipped_images); fix the files (python -m datamodules.coco verify --root "
            f"{coco} lists them) or accept a partial evaluation with --data.allow_skipped=true"
        ]
        metrics = json.loads((run / "metrics.json").read_text())["validate"]
        assert metrics["val/skipped_images"] == 1 and metrics["val/skipped_persons"] == persons

        run2 = tmp_path / "eval2"
        rc = cli(["validate", "--config", "configs/pose2d/synthetic.yaml", f"--data.root={coco}",
                  *TINY, "--data.allow_skipped=true", f"--run.dir={run2}"])  # fmt: skip
        assert rc == 0
        from pose2d.table import table_row

        row = table_row(json.loads((run2 / "metrics.json").read_text())["validate"], None,
                        "HRNet-W8", "64×64", "gt")  # fmt: skip
        assert row.splitlines()[-1] == (
            f"PARTIAL: 1 unreadable images skipped ({persons} persons not scored)"
        )
    finally:
        image.write_bytes(good)


def test_a_complete_evaluation_reports_zero_skipped(coco, tmp_path):
    run = tmp_path / "eval"
    rc = cli(["validate", "--config", "configs/pose2d/synthetic.yaml", f"--data.root={coco}",
              *TINY, f"--run.dir={run}"])  # fmt: skip
    assert rc == 0
    metrics = json.loads((run / "metrics.json").read_text())["validate"]
    assert metrics["val/skipped_images"] == 0 and metrics["val/skipped_persons"] == 0


def _ann(root) -> dict:
    return json.loads((root / "annotations" / "person_keypoints_val2017.json").read_text())


BAD_JSON = [
    (b"<html>not json</html>", "not a JSON file (Expecting value: line 1 column 1 (char 0))"),
    (json.dumps({"images": [], "info": {}}).encode(),
     "no 'annotations' list (top-level keys: images, info)"),
    (json.dumps([{"image_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]).encode(),
     "holds a JSON list, not an object with images and annotations (a detection results list "
     "belongs in --data.val_boxes)"),
    (json.dumps({"images": [{"id": 7, "file_name": "a.jpg"}], "annotations": []}).encode(),
     "images[0] (id 7) has no width, height"),
]  # fmt: skip
HINT = "; expected a COCO keypoints annotation file like person_keypoints_val2017.json"


@pytest.mark.parametrize(("content", "expect"), BAD_JSON)
def test_bad_annotation_json_is_named(tmp_path, content, expect):
    from datamodules.coco import read_annotation_json

    path = tmp_path / "person_keypoints_val2017.json"
    path.write_bytes(content)
    with pytest.raises(BadInputError) as e:
        read_annotation_json(path)
    assert str(e.value) == f"{path}: {expect}{HINT}"


def test_json_without_annotations_is_one_line_before_any_folder(tmp_path, capsys):
    root = tmp_path / "coco"
    for sub in ("annotations", "val2017", "train2017"):
        (root / sub).mkdir(parents=True)
    ann = root / "annotations" / "person_keypoints_val2017.json"
    ann.write_bytes(BAD_JSON[1][0])
    run = tmp_path / "eval"
    rc = cli(["validate", "--config", "configs/pose2d/synthetic.yaml", f"--data.root={root}",
              *TINY, f"--run.dir={run}"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and not run.exists()
    assert err == f"error: {ann}: {BAD_JSON[1][1]}{HINT}\n"


def test_zero_size_boxes_are_dropped_at_load(coco, tmp_path):
    from datamodules.coco import load_gt_records

    ann = _ann(coco)
    kept = len(load_gt_records(ann)["image_id"])
    a0, a1 = ann["annotations"][0], ann["annotations"][1]
    a0["bbox"] = [a0["bbox"][0], a0["bbox"][1], 0.0, 0.0]  # was a singular crop matrix
    a1["bbox"] = [a1["bbox"][0], a1["bbox"][1], 12.0, 0.0]
    with pytest.warns(UserWarning, match=rf"dropped 2 person annotations with a zero-width or "
                      rf"zero-height box \(annotation ids {a0['id']}, {a1['id']}\)"):  # fmt: skip
        rec = load_gt_records(ann)
    assert len(rec["image_id"]) == kept - 2
    assert (rec["box"][:, 2:] > 0).all()
    fixture = tmp_path / "coco"
    for sub in ("annotations", "val2017"):
        (fixture / sub).mkdir(parents=True)
    (fixture / "annotations" / "person_keypoints_val2017.json").write_text(json.dumps(ann))
    for im in ann["images"]:
        (fixture / "val2017" / im["file_name"]).write_bytes(
            (coco / "val2017" / im["file_name"]).read_bytes()
        )
    with pytest.warns(UserWarning, match="dropped 2"):
        ds = CocoKeypoints(fixture, "val", (64, 64))
    for i in range(len(ds)):
        assert np.isfinite(ds[i]["image"].numpy()).all()


def test_batch_larger_than_the_split_says_so(coco):
    from datamodules.coco import CocoKeypointsDataModule

    dm = CocoKeypointsDataModule(root=str(coco), input_size=[64, 64], batch_size=1000,
                                 num_workers=0, pin_memory=False)  # fmt: skip
    dm.check_files("fit")
    dm.setup("fit")
    n = len(dm.train_set)
    with pytest.warns(
        UserWarning,
        match=f"batch_size 1000 is larger than the {n} training "
        "samples of .*person_keypoints_train2017.json: every epoch is one step",
    ):
        batch = next(iter(dm.train_dataloader()))
    k = int(batch["index"][0])
    assert dm.describe_sample(batch, 0) == (
        f"{dm.train_set.image_path(k)} (image id {int(dm.train_set.image_id[k])})"
    )
