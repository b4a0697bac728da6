"""HeatmapModule: keypoint mapping, eval path against a COCO file, fast_dev_run, checkpoint load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from pose2d.checkpoint import load_detector
from pose2d.heatmaps import encode_gaussian
from pose2d.module import HeatmapModule

TINY = {"width": 8, "num_blocks": 2, "stage_modules": [1, 1, 1], "stem_channels": 16}
IN_W, IN_H = 64, 64
HM_W, HM_H = 16, 16
# OKS scale: large enough that the 4-px heatmap quantisation of this 64-px crop is within the
# tightest (nose) tolerance, so exact heatmaps must score AP = 1.
GT_AREA = 100_000.0


def _person(rng: np.random.Generator, cx: float, cy: float) -> np.ndarray:
    """17 keypoints (x, y) spread over a 40×40 px box around (cx, cy)."""
    return np.stack([cx + rng.uniform(-20, 20, 17), cy + rng.uniform(-20, 20, 17)], -1)


class FakeSet(Dataset):
    """Samples in the CONTRACTS batch format; crop = (centre, scale 64×64 px) → 64×64 input."""

    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.kpts = np.stack([_person(rng, 100 + 10 * i, 80) for i in range(n)])
        self.center = np.tile([[100.0, 80.0]], (n, 1)) + np.arange(n)[:, None] * [10.0, 0.0]
        self.scale = np.full((n, 2), 64.0)
        self.images = rng.standard_normal((n, 3, IN_H, IN_W)).astype(np.float32)

    def __len__(self) -> int:
        return len(self.kpts)

    def hm_coords(self, i: int) -> np.ndarray:
        return (self.kpts[i] - self.center[i]) * HM_W / self.scale[i, 0] + [HM_W / 2, HM_H / 2]

    def __getitem__(self, i: int) -> dict:
        hm, w = encode_gaussian(self.hm_coords(i), np.ones(17), (HM_W, HM_H))
        return {
            "image": torch.from_numpy(self.images[i]),
            "heatmap": torch.from_numpy(hm),
            "target_weight": torch.from_numpy(w),
            "center": torch.tensor(self.center[i]),
            "scale": torch.tensor(self.scale[i]),
            "image_id": torch.tensor(i + 1),
            "box_score": torch.tensor(1.0),
            "area": torch.tensor(1600.0),
            "index": torch.tensor(i),
        }


def write_gt(ds: FakeSet, path) -> str:
    anns = []
    for i, k in enumerate(ds.kpts):
        kp = np.concatenate([k, np.full((17, 1), 2.0)], 1).reshape(-1).tolist()
        anns.append({
            "id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0, "area": GT_AREA,
            "bbox": [float(k[:, 0].min()), float(k[:, 1].min()), 40.0, 40.0],
            "keypoints": kp, "num_keypoints": 17,
        })  # fmt: skip
    gt = {
        "images": [{"id": i + 1, "width": 640, "height": 480, "file_name": f"{i + 1}.jpg"}
                   for i in range(len(ds))],
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "supercategory": "person"}],
    }  # fmt: skip
    path.write_text(json.dumps(gt))
    return str(path)


class FakeDM(pl.LightningDataModule):
    def __init__(self, tmp_path, n: int = 8) -> None:
        super().__init__()
        self.train_set, self.val_set = FakeSet(n, 0), FakeSet(n, 1)
        self._ann = write_gt(self.val_set, tmp_path / "val.json")
        self.box_source = "gt"

    def ann_file(self, split: str) -> str:
        return self._ann

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=4, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=4)

    test_dataloader = val_dataloader
    predict_dataloader = val_dataloader


def test_keypoints_map_heatmap_peak_to_image_pixels():
    m = HeatmapModule(**TINY, flip_test=False)
    hm = torch.zeros(1, 17, 16, 12)
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(12.0), indexing="ij")
    hm[0, :] = torch.exp(-((xx - 5) ** 2 + (yy - 7) ** 2) / 8)  # symmetric peak at (5, 7)
    k = m.keypoints(hm, torch.tensor([[50.0, 60.0]]), torch.tensor([[120.0, 160.0]]))
    # official transform_preds: x = (u - w/2) * scale_w / w + cx; y uses the same factor.
    assert k.shape == (1, 17, 3)
    torch.testing.assert_close(k[0, 0], torch.tensor([40.0, 50.0, 1.0]))


def test_decode_udp_requires_udp_data(tmp_path):
    dm = FakeDM(tmp_path)
    dm.hparams["use_udp"] = True
    trainer = pl.Trainer(fast_dev_run=True, logger=False, enable_progress_bar=False)
    with pytest.raises(ValueError, match="use_udp"):
        trainer.validate(HeatmapModule(**TINY), datamodule=dm, verbose=False)


def test_perfect_heatmaps_give_ap_one(tmp_path):
    """The eval path (decode → inverse crop warp → COCO metric) recovers the GT: AP = 1."""
    dm = FakeDM(tmp_path)
    module = HeatmapModule(**TINY, flip_test=False)
    module.metrics = {}
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    module.trainer = trainer  # the metric reads trainer.datamodule.ann_file
    trainer.datamodule = dm  # type: ignore[misc]
    metric = module._metric("val")
    for batch in dm.val_dataloader():
        kpts = module.keypoints(batch["heatmap"], batch["center"], batch["scale"])
        metric.update(batch["index"], batch["image_id"], kpts, batch["box_score"], batch["area"])
    stats = metric.compute()
    assert stats["AP"] == pytest.approx(1.0)


def test_fast_dev_run_logs_loss_and_ap(tmp_path):
    pl.seed_everything(0)
    module = HeatmapModule(**TINY, cam_placement="paper")
    trainer = pl.Trainer(fast_dev_run=2, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(module, datamodule=FakeDM(tmp_path))
    m = trainer.callback_metrics
    assert torch.isfinite(m["train/loss"]) and torch.isfinite(m["val/loss"])
    for k in ("val/AP", "val/AP50", "val/AR", "val/APm", "val/ARl"):
        assert k in m
    assert 0.0 <= float(m["val/AP"]) <= 1.0


def test_optimizer_recipe():
    module = HeatmapModule(**TINY)
    cfg = module.configure_optimizers()
    opt, sched = cfg["optimizer"], cfg["lr_scheduler"]["scheduler"]
    assert isinstance(opt, torch.optim.Adam)
    assert opt.defaults["lr"] == 1e-3 and opt.defaults["weight_decay"] == 0.0
    assert sorted(sched.milestones) == [170, 200] and sched.gamma == 0.1


def test_checkpoint_roundtrip_and_predict(tmp_path):
    pl.seed_everything(0)
    dm = FakeDM(tmp_path)
    module = HeatmapModule(**TINY, cam_placement="sub21", lr=1e-2)
    trainer = pl.Trainer(max_epochs=1, limit_val_batches=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(module, datamodule=dm)
    ckpt = tmp_path / "m.ckpt"
    trainer.save_checkpoint(ckpt)
    net = load_detector(ckpt)
    x = torch.randn(2, 3, IN_H, IN_W)
    module.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x), module.model(x))
    assert len(net.cam_state_keys()) == 12 * 4
    out = trainer.predict(module, dataloaders=dm.val_dataloader())
    assert out[0]["keypoints"].shape == (4, 17, 3)
    assert torch.equal(out[0]["index"], torch.arange(4))


def test_table_row_columns_in_paper_order():
    from pose2d.table import table_row

    m = {"val/AP": 0.757, "val/AR": 0.806, "val/AP50": 0.906, "val/AP75": 0.821,
         "val/APl": 0.824, "val/APm": 0.713}  # fmt: skip
    row = table_row(m, 28_539_425, "HRNet-W32+CAM(paper)", "256×192", "det").splitlines()[-1]
    assert (
        row == "| HRNet-W32+CAM(paper) | det | 28.54M | 256×192 | 75.7 | 80.6 | 90.6 | 82.1 "
        "| 82.4 | 71.3 |"
    )


def test_bench_runs_on_cpu():
    from pose2d.bench import bench_train_step

    r = bench_train_step(batch=2, input_hw=(64, 64), steps=1, warmup=1, device="cpu", **TINY)
    assert r["images_per_s"] > 0 and r["peak_memory_mb"] > 0 and r["device"].startswith("CPU")


def test_validate_writes_coco_results_json(tmp_path):
    """The scored predictions are kept as a COCO results file next to the run."""
    dm = FakeDM(tmp_path)
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path / "run")  # fmt: skip
    trainer.validate(HeatmapModule(**TINY, flip_test=False), datamodule=dm, verbose=False)
    res = json.loads((tmp_path / "run" / "results" / "keypoints_val_results.json").read_text())
    assert len(res) == len(dm.val_set)  # one pose per GT box, none lost to OKS-NMS here
    assert {r["image_id"] for r in res} == set(range(1, len(dm.val_set) + 1))
    assert all(len(r["keypoints"]) == 51 and r["category_id"] == 1 for r in res)


def test_table_reads_the_box_source_the_run_used(tmp_path):
    """The Table I row names the boxes from the run's saved config, so GT-box AP cannot be
    printed as detector-box AP."""
    from pose2d.table import main as table_main

    module = HeatmapModule(**TINY)
    trainer = pl.Trainer(max_epochs=0, logger=False, enable_progress_bar=False,
                         default_root_dir=tmp_path)  # fmt: skip
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"validate": {"val/AP": 0.5}}))
    (run / "config.yaml").write_text("data:\n  val_boxes: person_detection_results/d.json\n")
    row = table_main([str(run / "metrics.json"), "--ckpt", str(tmp_path / "m.ckpt")])
    assert "| det (d.json) |" in row and "| 50.0 |" in row
    (run / "config.yaml").write_text("data:\n  val_boxes: gt\n")
    with pytest.raises(SystemExit, match="used gt"):
        table_main([str(run / "metrics.json"), "--ckpt", str(tmp_path / "m.ckpt"), "--boxes=det"])


def test_bench_defaults_to_the_paper_model(capsys, tmp_path):
    """``make bench-2d`` with no CAM= measures W32 + CAM (the paper's detector), not HRNet."""
    from pose2d.bench import main as bench_main

    r = bench_main(["--width", "8", "--batch", "1", "--input", "64", "64", "--steps", "1",
                    "--warmup", "0", "--tiny", "--rows", "reference", "fast paper",
                    "--json", str(tmp_path / "b.json")])  # fmt: skip
    rows = {d["row"]: d for d in r["rows"]}
    assert rows["fast paper"]["cam_placement"] == "paper" and rows["fast paper"]["images_per_s"] > 0
    assert rows["reference"]["cam_placement"] == "none" and not rows["reference"]["channels_last"]
    assert json.loads((tmp_path / "b.json").read_text())["rows"] == r["rows"]


def test_test_stage_reports_the_test_boxes(tmp_path, caplog):
    """``data.test_boxes`` differs from the validation boxes: the test AP names the test boxes."""
    dm = FakeDM(tmp_path)
    dm.test_box_source = "dets.json"
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)  # fmt: skip
    trainer.test(HeatmapModule(**TINY, flip_test=False), datamodule=dm, verbose=False)
    assert "test AP" in caplog.text and "(boxes: dets.json)" in caplog.text


def test_load_from_checkpoint_does_not_need_the_pretrained_file(tmp_path):
    pre = tmp_path / "init.pth"
    torch.save(HeatmapModule(**TINY).model.state_dict(), pre)
    module = HeatmapModule(**TINY, pretrained=str(pre))
    trainer = pl.Trainer(max_epochs=0, logger=False, enable_progress_bar=False,
                         default_root_dir=tmp_path)  # fmt: skip
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    pre.unlink()  # e.g. evaluating on another machine
    loaded = HeatmapModule.load_from_checkpoint(tmp_path / "m.ckpt", weights_only=True)
    torch.testing.assert_close(loaded.model.final_layer.weight, module.model.final_layer.weight)
