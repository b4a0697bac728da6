"""Official HRNet COCO pose files (plain state dicts) for evaluation and inference, and the CAM
initialisation that starts a CAM model exactly at the pretrained plain model."""

from __future__ import annotations

import json

import pytest
import torch

from pose2d.checkpoint import detector_decode_method, detector_input_size, load_detector
from pose2d.hrnet import PoseHighResolutionNet
from pose2d.official import (
    hrnet_architecture,
    input_size_from_name,
    is_plain_hrnet,
    official_eval_args,
)

SMALL = dict(width=8, num_blocks=1, stage_modules=(1, 1, 1), stem_channels=8)
CAM = dict(SMALL, cam_blocks=1)


def random_hrnet(**kw) -> PoseHighResolutionNet:
    """A small HRNet whose every weight and BN statistic is informative (not the init)."""
    torch.manual_seed(0)
    net = PoseHighResolutionNet(**{**SMALL, **kw})
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        for name, b in net.named_buffers():
            if name.endswith("running_var"):
                b.uniform_(0.5, 2.0)
            elif name.endswith("running_mean"):
                b.normal_()
    return net.eval()


@pytest.mark.parametrize("width", [32, 48])
def test_architecture_read_from_official_shapes(width) -> None:
    with torch.device("meta"):  # shapes only: no 28M/64M parameters allocated
        sd = PoseHighResolutionNet(width=width).state_dict()
    assert len(sd) == 1754
    assert hrnet_architecture(sd) == dict(
        width=width, num_joints=17, stem_channels=64, num_blocks=4, stage_modules=[1, 4, 3]
    )


def test_input_size_from_the_official_file_names() -> None:
    assert input_size_from_name("models/pose_hrnet_w32_256x192.pth") == (192, 256)
    assert input_size_from_name("pose_hrnet_w48_384x288.pth") == (288, 384)
    assert input_size_from_name("my_hrnet.pth") is None


@pytest.mark.parametrize("layout", ["bare", "module", "state_dict"])
def test_plain_state_dict_is_a_detector(tmp_path, layout) -> None:
    net = random_hrnet()
    sd = net.state_dict()
    obj = {
        "bare": sd,
        "module": {f"module.{k}": v for k, v in sd.items()},  # nn.DataParallel
        "state_dict": {"state_dict": sd},
    }[layout]
    path = tmp_path / "pose_hrnet_w8_64x64.pth"
    torch.save(obj, path)
    assert is_plain_hrnet(path)
    det = load_detector(path)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(det(x), net(x))
    assert detector_input_size(path) == (64, 64)
    assert detector_decode_method(path) == "standard"


def test_lightning_checkpoint_is_not_plain(tmp_path) -> None:
    path = tmp_path / "last.ckpt"
    sd = {f"model.{k}": v for k, v in random_hrnet().state_dict().items()}
    torch.save({"state_dict": sd, "pytorch-lightning_version": "2.5", "hyper_parameters": {}}, path)
    assert not is_plain_hrnet(path)


def test_eval_command_line_uses_the_file_with_official_test_settings(tmp_path, capsys) -> None:
    path = tmp_path / "pose_hrnet_w8_384x288.pth"
    torch.save(random_hrnet().state_dict(), path)
    args = ["validate", "--config", "c.yaml", "--ckpt_path", str(path), "--model.flip_test=false"]
    out = official_eval_args(args, str(path))
    assert "--ckpt_path" not in out and str(path) not in out[:4]
    for flag in (f"--model.pretrained={path}", "--model.cam_placement=none", "--model.width=8",
                 "--model.stage_modules=[1,1,1]", "--model.shift_heatmap=true",
                 "--model.decode_method=standard", "--data.input_size=[288,384]",
                 "--data.sigma=3.0",
                 "--data.val_boxes=person_detection_results/"
                 "COCO_val2017_detections_AP_H_56_person.json"):  # fmt: skip
        assert flag in out, flag
    assert "--model.flip_test=false" in out and "--model.flip_test=true" not in out  # user wins
    assert "official HRNet state dict" in capsys.readouterr().out


def test_cam_identity_init_starts_at_the_pretrained_model(tmp_path) -> None:
    plain = random_hrnet()
    path = tmp_path / "pose_hrnet_w8_64x64.pth"
    torch.save(plain.state_dict(), path)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = plain(x)
        for placement in ("paper", "sub321"):
            cam = PoseHighResolutionNet(**CAM, cam_placement=placement, pretrained=str(path))
            assert torch.equal(cam.eval()(x), ref)  # auto = identity with pretrained weights
        normal = PoseHighResolutionNet(
            **CAM, cam_placement="paper", pretrained=str(path), cam_init="normal"
        ).eval()
        rel = ((normal(x) - ref).abs().max() / ref.abs().max()).item()
    assert rel > 0.05  # gates at ~0.5 halve each gated block: the model starts elsewhere
    # the identity gate sits where sigmoid is steepest: the CAMs learn from the first step
    cam = PoseHighResolutionNet(**CAM, cam_placement="paper", pretrained=str(path)).train()
    cam(x).square().mean().backward()
    fc2 = [m.fc2.weight.grad for m in cam.modules() if hasattr(m, "fc2")]
    assert len(fc2) == 3 and all(g.abs().sum() > 0 for g in fc2)


def test_cam_init_from_scratch_is_the_official_conv_init() -> None:
    torch.manual_seed(0)
    net = PoseHighResolutionNet(**CAM, cam_placement="paper")  # auto without pretrained
    fc2 = [m.fc2 for m in net.modules() if hasattr(m, "fc2")]
    assert all(float(f.weight.std()) == pytest.approx(0.001, rel=0.5) for f in fc2)
    with pytest.raises(ValueError, match="cam_init"):
        PoseHighResolutionNet(**SMALL, cam_init="zeros")


def test_validate_an_official_file_on_synthetic_coco(tmp_path, monkeypatch, capsys) -> None:
    """``make eval-2d CKPT=<official>.pth``: validate + Table I row from the plain file."""
    from pose2d.__main__ import main
    from pose2d.table import main as table

    monkeypatch.setenv("WANDB_MODE", "disabled")
    path = tmp_path / "pose_hrnet_w8_64x64.pth"
    torch.save({f"module.{k}": v for k, v in random_hrnet().state_dict().items()}, path)
    run = tmp_path / "eval"
    main(["validate", "--config", "configs/pose2d/synthetic.yaml", f"--ckpt_path={path}",
          f"--data.root={tmp_path / 'syn'}", "--data.synthetic_num_train=2",
          "--data.synthetic_num_val=3", "--data.num_workers=0", "--data.val_boxes=gt",
          "--trainer.enable_progress_bar=false", f"--run.dir={run}"])  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())["validate"]
    assert 0.0 <= metrics["val/AP"] <= 1.0
    row = table([str(run / "metrics.json"), "--ckpt", str(path), "--boxes", "gt"])
    assert "| HRNet-W8 (official) | gt |" in row and "| 64×64 |" in row
