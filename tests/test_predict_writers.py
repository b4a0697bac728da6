"""``predict`` writes: COCO keypoint results (2D) and per-sequence 3D npz files (3D), each sample
once across ranks, atomically; the 3D file scores to exactly what ``pose3d test`` reports."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from callbacks.prediction_writer import PoseSequenceWriter, gather_rows
from datamodules.skeleton import H36M


class _FakeStrategy:
    """``all_gather`` of ``world`` ranks whose tensors are ``rank * 100 + x`` (same shape)."""

    root_device = torch.device("cpu")

    def __init__(self, world: int, sizes: list[int]) -> None:
        self.world, self.sizes, self.calls = world, sizes, 0

    def all_gather(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 1:  # the row counts
            return torch.tensor(self.sizes)
        return torch.stack([x + 100 * r for r in range(self.world)])


def test_gather_rows_handles_ranks_with_different_counts() -> None:
    # every rank pads its rows to the longest; the padding never reaches the output
    trainer = SimpleNamespace(world_size=2, strategy=_FakeStrategy(2, [3, 3]))
    out = gather_rows(trainer, torch.arange(3.0).reshape(3, 1))
    assert out.flatten().tolist() == [0, 1, 2, 100, 101, 102]
    trainer = SimpleNamespace(world_size=2, strategy=_FakeStrategy(2, [3, 1]))
    out = gather_rows(trainer, torch.arange(3.0).reshape(3, 1))
    assert out.flatten().tolist() == [0, 1, 2, 100]


def _fake_trainer(tmp_path, records):
    dataset = SimpleNamespace(cache=SimpleNamespace(sequences=records), skeleton=H36M)
    return SimpleNamespace(world_size=1, is_global_zero=True, default_root_dir=str(tmp_path),
                           predict_dataloaders=SimpleNamespace(dataset=dataset))  # fmt: skip


def test_sequence_writer_layout_and_each_sample_once(tmp_path) -> None:
    records = [
        {"subject": "S9", "action": "Walking 1", "group": "Walking", "camera": "54138969"},
        {"subject": "S11", "action": "Eating", "group": "Eating", "camera": "60457274"},
    ]
    writer = PoseSequenceWriter()
    trainer = _fake_trainer(tmp_path, records)
    writer.on_predict_epoch_start(trainer, None)
    rng = np.random.default_rng(0)
    batches = [([0, 1, 2], [0, 0, 1], [4, 0, 0]), ([2, 3], [1, 0], [0, 2])]  # index 2 twice
    for index, seq, frame in batches:
        n = len(index)
        pose = torch.from_numpy(rng.normal(size=(n, 17, 3)).astype(np.float32))
        pose[:, 0] = 0
        writer.write_on_batch_end(trainer, None, {
            "index": torch.tensor(index), "seq": torch.tensor(seq), "frame": torch.tensor(frame),
            "pose_3d": pose, "target_3d": pose + 1}, None, None, 0)  # fmt: skip
    writer.on_predict_epoch_end(trainer, None)
    with np.load(tmp_path / "predictions_3d.npz", allow_pickle=False) as f:
        assert f["frames/S9/Walking 1/54138969"].tolist() == [0, 2, 4]  # frame order
        assert f["frames/S11/Eating/60457274"].tolist() == [0]  # the duplicate written once
        assert f["S9/Walking 1/54138969"].shape == (3, 17, 3)
        np.testing.assert_array_equal(f["target/S11/Eating/60457274"],
                                      f["S11/Eating/60457274"] + 1)  # fmt: skip
        meta = json.loads(str(f["meta"]))
    assert meta["joint_names"] == list(H36M.joint_names) and "root-relative" in meta["units"]
    assert [s["predicted_frames"] for s in meta["sequences"]] == [3, 1]
    assert not list(tmp_path.glob(".*tmp*"))


def _small_hrnet_file(path) -> None:
    from pose2d.hrnet import PoseHighResolutionNet

    torch.manual_seed(0)
    net = PoseHighResolutionNet(width=8, num_blocks=1, stage_modules=(1, 1, 1), stem_channels=8)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    torch.save(net.state_dict(), path)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_pose2d_predict_writes_the_results_validate_scores(tmp_path, monkeypatch) -> None:
    from pose2d.__main__ import main

    monkeypatch.setenv("WANDB_MODE", "disabled")
    ckpt = tmp_path / "pose_hrnet_w8_64x64.pth"
    _small_hrnet_file(ckpt)
    common = ["--config", "configs/pose2d/synthetic.yaml", f"--ckpt_path={ckpt}",
              f"--data.root={tmp_path / 'syn'}", "--data.synthetic_num_train=2",
              "--data.synthetic_num_val=3", "--data.num_workers=0", "--data.val_boxes=gt",
              "--trainer.enable_progress_bar=false"]  # fmt: skip
    main(["validate", *common, f"--run.dir={tmp_path / 'val'}"])
    main(["predict", *common, f"--run.dir={tmp_path / 'pred'}", "--prediction.npz=true"])
    scored = json.loads((tmp_path / "val" / "results" / "keypoints_val_results.json").read_text())
    written = json.loads((tmp_path / "pred" / "keypoints_predict_results.json").read_text())
    assert written and written == scored
    with np.load(tmp_path / "pred" / "keypoints_predict.npz", allow_pickle=False) as f:
        assert f["keypoints"].shape[1:] == (17, 3) and len(f["index"]) == len(set(f["index"]))


@pytest.mark.slow
@pytest.mark.timeout(500)
def test_pose3d_predict_npz_scores_like_test(tmp_path, monkeypatch) -> None:
    """A converted PoseFormer file: ``pose3d.report`` on the npz that a 2-process DDP
    ``pose3d predict`` wrote prints what a 1-process ``pose3d test`` logged (every frame once)."""
    import os
    import subprocess
    import sys

    from pose3d.__main__ import main
    from pose3d.convert import main as convert
    from pose3d.report import metrics_from_predictions
    from tests.test_3d_convert_poseformer import official_file

    monkeypatch.setenv("WANDB_MODE", "disabled")
    src, ckpt = tmp_path / "detected9f.bin", tmp_path / "detected9f.ckpt"
    official_file(src, 9)
    assert convert(["poseformer", str(src), "--frames", "9", "--out", str(ckpt)]) == 0
    common = ["--config", "configs/pose3d/synthetic.yaml", f"--ckpt_path={ckpt}",
              f"--data.init_args.root={tmp_path / 'syn'}", "--data.init_args.synthetic_frames=40",
              "--data.init_args.eval_batch_size=500",
              "--trainer.enable_progress_bar=false"]  # fmt: skip
    main(["test", *common, f"--run.dir={tmp_path / 'test'}"])
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    env.pop("MASTER_PORT", None)
    ddp = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp"]
    proc = subprocess.run([sys.executable, "-m", "pose3d", "predict", *common, *ddp,
                           f"--run.dir={tmp_path / 'pred'}"], env=env, capture_output=True,
                          text=True, timeout=400)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    tested = json.loads((tmp_path / "test" / "metrics.json").read_text())["test"]
    again = metrics_from_predictions(tmp_path / "pred" / "predictions_3d.npz")
    assert again["test/frames"] == tested["test/frames"] > 0
    for key in ("test/mpjpe", "test/p_mpjpe", "test/mpjve", "test/mpjpe/Walking"):
        assert again[key] == pytest.approx(tested[key], rel=1e-5), key


def test_image_folder_crops_equal_the_evaluation_crops(tmp_path) -> None:
    """``--data.predict_images`` + ``coco_json`` boxes crop exactly what validate crops from the
    same detection file; ``full`` is one whole-image box per image."""
    from datamodules.coco import CocoKeypoints
    from datamodules.image_folder import ImageFolderCrops
    from datamodules.synthetic_coco import generate_synthetic_coco

    root = tmp_path / "syn"
    generate_synthetic_coco(root, num_train=1, num_val=3, seed=0)
    dets = root / "person_detection_results" / "synthetic_val2017_detections.json"
    ref = CocoKeypoints(root, "val", (64, 64), boxes=str(dets))
    crops = ImageFolderCrops(root / "val2017", (64, 64), f"coco_json:{dets}")
    assert len(crops) == len(ref) > 0
    by_key = {
        (int(ref[i]["image_id"]), float(ref[i]["box_score"])): ref[i] for i in range(len(ref))
    }
    for i in range(len(crops)):
        got = crops[i]
        want = by_key[(int(got["image_id"]), float(got["box_score"]))]
        for k in ("image", "center", "scale", "area"):
            assert torch.equal(got[k], want[k]), k
    full = ImageFolderCrops(root / "val2017", (64, 64), "full")
    assert len(full) == 3 and [im["id"] for im in full.images] == sorted(set(ref.image_id))
