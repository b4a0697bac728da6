"""COCO inputs are checked where they enter, and an evaluation that could not read every image
says so in metrics.json, the log and the Table I row, and exits with status 2 unless allowed."""

from __future__ import annotations

import json

import numpy as np
import pytest

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
