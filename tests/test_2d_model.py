"""HRNet(+CAM): official names/shapes/parameter counts, CAM placements, pretrained loading, loss."""

from __future__ import annotations

import pytest
import torch

from pose2d.cam import ChannelAttention, cam_param_count
from pose2d.hrnet import CAM_PRESETS, PoseHighResolutionNet, parse_cam_placement
from pose2d.loss import JointsMSELoss, joints_mse_loss
from pose2d.pretrained import load_pretrained


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(scope="module")
def w32() -> PoseHighResolutionNet:
    return PoseHighResolutionNet(width=32)


def tiny(**kw) -> PoseHighResolutionNet:
    kw = {"width": 8, "num_blocks": 2, "stage_modules": (1, 1, 1), "stem_channels": 16} | kw
    return PoseHighResolutionNet(**kw)


def test_w32_parameter_count_and_keys(w32):
    assert n_params(w32) == 28_536_113
    sd = w32.state_dict()
    keys = list(sd)
    assert len(keys) == 1754
    assert keys[0] == "conv1.weight" and keys[-1] == "final_layer.bias"
    shapes = {
        "conv2.weight": (64, 64, 3, 3),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "transition1.0.0.weight": (32, 256, 3, 3),
        "transition1.1.0.0.weight": (64, 256, 3, 3),
        "transition2.2.0.0.weight": (128, 64, 3, 3),
        "transition3.3.0.0.weight": (256, 128, 3, 3),
        "stage2.0.branches.0.0.conv1.weight": (32, 32, 3, 3),
        "stage3.3.branches.2.3.bn2.running_var": (128,),
        "stage4.2.fuse_layers.0.1.0.weight": (32, 64, 1, 1),
        "stage4.2.fuse_layers.0.3.0.weight": (32, 256, 1, 1),
        "stage4.0.fuse_layers.3.0.0.0.weight": (32, 32, 3, 3),
        "stage4.0.fuse_layers.3.0.2.0.weight": (256, 32, 3, 3),
        "final_layer.weight": (17, 32, 1, 1),
        "final_layer.bias": (17,),
    }
    for k, shape in shapes.items():
        assert tuple(sd[k].shape) == shape, k
    # The last module fuses into branch 0 only; earlier stage-4 modules keep all four outputs.
    assert not any(k.startswith("stage4.2.fuse_layers.1") for k in keys)
    assert any(k.startswith("stage4.1.fuse_layers.3") for k in keys)
    assert len(w32.stage4[2].fuse_layers) == 1
    assert not any(".cam." in k for k in keys)


def test_w48_parameter_count():
    m = PoseHighResolutionNet(width=48)
    assert n_params(m) == 63_595_745
    assert len(m.state_dict()) == 1754


def test_official_init(w32):
    w = w32.stage3[1].branches[1][0].conv1.weight
    assert abs(w.std().item() - 0.001) < 1e-4
    assert torch.all(w32.bn1.weight == 1) and torch.all(w32.bn1.bias == 0)
    assert torch.all(w32.final_layer.bias == 0)


@pytest.mark.parametrize("size", [(256, 192), (384, 288)])
def test_output_shape(w32, size):
    h, w = size
    with torch.no_grad():
        out = w32.eval()(torch.randn(1, 3, h, w))
    assert out.shape == (1, 17, h // 4, w // 4)
    assert torch.isfinite(out).all()


def test_input_size_must_be_multiple_of_32():
    with pytest.raises(ValueError, match="multiples of 32"):
        tiny()(torch.zeros(1, 3, 64, 48))


def test_cam_module_math():
    cam = ChannelAttention(8, 4)
    assert n_params(cam) == cam_param_count(8) == 8 * 8 // 2 + 5 * 8 // 4
    x = torch.randn(2, 8, 5, 3)
    s = x.mean((2, 3))
    hidden = torch.relu(s @ cam.fc1.weight[:, :, 0, 0].T + cam.fc1.bias)
    gate = torch.sigmoid(hidden @ cam.fc2.weight[:, :, 0, 0].T + cam.fc2.bias)
    torch.testing.assert_close(cam(x), x * gate[:, :, None, None])


@pytest.mark.parametrize(
    ("preset", "n_modules", "extra_w32"),
    [
        ("none", 0, 0),
        ("paper", 6, 6 * 552),
        ("sub21", 12, 6 * 552 + 6 * 2128),
        ("sub321", 16, 6 * 552 + 6 * 2128 + 4 * 8352),
        ("stage1", 4, 2 * 552 + 2 * 2128),
        ("stage21", 10, 4 * 552 + 4 * 2128 + 2 * 8352),
        ("stage321", 16, 6 * 552 + 6 * 2128 + 4 * 8352),
    ],
)
def test_cam_presets_add_only_new_keys(w32, preset, n_modules, extra_w32):
    m = PoseHighResolutionNet(width=32, cam_placement=preset)
    base = w32.state_dict()
    sd = m.state_dict()
    new = [k for k in sd if k not in base]
    assert all(".cam." in k for k in new)
    assert set(base) <= set(sd)
    assert all(sd[k].shape == base[k].shape for k in base)
    assert len(new) == 4 * n_modules  # fc1/fc2 weight + bias per module
    assert n_params(m) - 28_536_113 == extra_w32
    # Only the last module of a stage and only its last two blocks carry a CAM.
    assert all(".branches." in k and k.split(".")[4] in ("2", "3") for k in new)
    last = {"2": "0", "3": "3", "4": "2"}
    assert all(k.split(".")[1] == last[k[5]] for k in new)


def test_paper_cam_key_names():
    m = PoseHighResolutionNet(width=32, cam_placement="paper")
    keys = m.cam_state_keys()
    assert "stage2.0.branches.0.3.cam.fc1.weight" in keys
    assert "stage4.2.branches.0.2.cam.fc2.bias" in keys
    assert m.state_dict()["stage3.3.branches.0.3.cam.fc1.weight"].shape == (8, 32, 1, 1)


def test_cam_placement_parsing_and_errors():
    assert parse_cam_placement("paper") == parse_cam_placement("2.0, 3.0,4.0")
    assert parse_cam_placement(["1.0", "4.3"]) == {(1, 0), (4, 3)}
    assert parse_cam_placement(CAM_PRESETS["sub321"]) == parse_cam_placement("stage321")
    with pytest.raises(ValueError, match="does not exist"):
        parse_cam_placement("2.2")
    with pytest.raises(ValueError, match="preset"):
        parse_cam_placement("everywhere")


def test_cam_all_modules_and_layer1():
    base = n_params(tiny())
    m = tiny(cam_placement="2.0,1.0", cam_modules="all", stage_modules=(2, 1, 1), cam_blocks=1)
    # stage2 has 2 modules → 2 CAMs on width 8; layer1 output 64 channels → 1 CAM.
    assert n_params(m) - n_params(tiny(stage_modules=(2, 1, 1))) == 2 * cam_param_count(
        8
    ) + cam_param_count(64)
    assert base > 0


def test_cam_changes_forward_but_keeps_shape():
    torch.manual_seed(0)
    m = tiny(cam_placement="paper").eval()
    for mod in m.modules():  # the official N(0, 0.001) init gives ~1e-12 outputs; scale up
        if isinstance(mod, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(mod.weight)
    with torch.no_grad():
        x = torch.randn(2, 3, 96, 64)
        y = m(x)
        for blk in (m.stage2[0].branches[0][1], m.stage4[0].branches[0][1]):
            blk.cam = None
        y2 = m(x)
    assert y.shape == y2.shape == (2, 17, 24, 16)
    assert not torch.allclose(y, y2)


# --- pretrained -----------------------------------------------------------------------------------
def _imagenet_like(model: PoseHighResolutionNet) -> dict[str, torch.Tensor]:
    """A state dict shaped like HRNet-Image-Classification's: pose keys minus final_layer, plus
    the multi-scale stage4 fuse layers, incre/downsamp modules and the 1024→2048 final_layer."""
    torch.manual_seed(1)
    sd = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in model.state_dict().items()}
    del sd["final_layer.weight"], sd["final_layer.bias"]
    sd["stage4.2.fuse_layers.1.0.0.0.weight"] = torch.randn(16, 8, 3, 3)
    sd["stage4.2.fuse_layers.3.2.1.weight"] = torch.randn(64)
    sd["incre_modules.0.0.conv1.weight"] = torch.randn(32, 8, 1, 1)
    sd["downsamp_modules.0.0.weight"] = torch.randn(256, 128, 3, 3)
    sd["final_layer.0.weight"] = torch.randn(2048, 1024, 1, 1)
    sd["classifier.weight"] = torch.randn(1000, 2048)
    sd["classifier.bias"] = torch.randn(1000)
    return sd


def test_load_imagenet_checkpoint(tmp_path):
    m = tiny(cam_placement="paper")
    fake = _imagenet_like(tiny())
    path = tmp_path / "hrnet_tiny_imagenet.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in fake.items()}}, path)
    init_final = m.final_layer.weight.detach().clone()
    report = load_pretrained(m, path)
    assert report.kind == "imagenet"
    own = m.state_dict()
    n_pose_keys = len(tiny().state_dict())
    assert len(report.loaded) == n_pose_keys - 2
    assert set(report.missing) == {"final_layer.weight", "final_layer.bias"} | set(
        m.cam_state_keys()
    )
    assert "classifier.weight" in report.dropped and "final_layer.0.weight" in report.dropped
    assert "stage4.2.fuse_layers.1.0.0.0.weight" in report.dropped
    torch.testing.assert_close(
        own["stage3.0.branches.2.1.conv2.weight"], fake["stage3.0.branches.2.1.conv2.weight"]
    )
    torch.testing.assert_close(own["bn1.running_mean"], fake["bn1.running_mean"])
    torch.testing.assert_close(m.final_layer.weight, init_final)


def test_load_pose_checkpoint_strict(tmp_path):
    src = tiny()
    torch.nn.init.normal_(src.final_layer.weight)
    path = tmp_path / "pose.pth"
    torch.save(src.state_dict(), path)
    dst = tiny(cam_placement="sub21")
    report = load_pretrained(dst, path)
    assert report.kind == "pose" and report.dropped == []
    assert set(report.missing) == set(dst.cam_state_keys())
    torch.testing.assert_close(dst.final_layer.weight, src.final_layer.weight)
    # Constructor path gives the same weights.
    via_ctor = tiny(pretrained=str(path))
    torch.testing.assert_close(via_ctor.conv1.weight, src.conv1.weight)


def test_load_pose_checkpoint_errors(tmp_path):
    sd = tiny().state_dict()
    del sd["stage2.0.branches.0.0.conv1.weight"]
    path = tmp_path / "broken.pth"
    torch.save(sd, path)
    with pytest.raises(ValueError, match="missing"):
        load_pretrained(tiny(), path)
    torch.save(tiny(width=16).state_dict(), path)
    with pytest.raises(ValueError, match="shape mismatch"):
        load_pretrained(tiny(), path)
    with pytest.raises(FileNotFoundError, match="hrnet_w32"):
        load_pretrained(tiny(), tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth"):
        load_pretrained(tiny(), tmp_path / "junk.pth")


# --- loss -----------------------------------------------------------------------------------------
def test_joints_mse_loss_hand_case():
    pred = torch.zeros(1, 2, 1, 2)
    target = torch.zeros(1, 2, 1, 2)
    pred[0, 0] = torch.tensor([[1.0, 3.0]])  # joint 0: errors 1, 3 → MSE 5
    pred[0, 1] = torch.tensor([[2.0, 2.0]])  # joint 1: errors 2, 2 → MSE 4
    w = torch.tensor([[1.0, 0.0]])
    # 0.5 · mean over joints of (5, 0) = 1.25 ; without weights 0.5 · (5 + 4) / 2 = 2.25
    assert joints_mse_loss(pred, target, w).item() == pytest.approx(1.25)
    assert JointsMSELoss(use_target_weight=False)(pred, target, w).item() == pytest.approx(2.25)
    assert JointsMSELoss()(pred, target, w[..., None]).item() == pytest.approx(1.25)


def test_joints_mse_loss_matches_official_loop():
    torch.manual_seed(0)
    pred, gt = torch.rand(3, 5, 4, 6), torch.rand(3, 5, 4, 6)
    w = torch.rand(3, 5, 1)
    ref = 0.0
    for j in range(5):
        hp, hg = pred[:, j].reshape(3, -1), gt[:, j].reshape(3, -1)
        ref += 0.5 * torch.nn.functional.mse_loss(hp * w[:, j], hg * w[:, j])
    assert joints_mse_loss(pred, gt, w).item() == pytest.approx(ref.item() / 5, rel=1e-6)


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    m = tiny(width=16, num_joints=4)
    x = torch.randn(2, 3, 64, 64)
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    c = torch.rand(2, 4, 2) * 12 + 2  # Gaussian targets (σ=2) at random heatmap positions
    d2 = (xx - c[..., :1, None]) ** 2 + (yy - c[..., 1:, None]) ** 2
    target = torch.exp(-d2 / 8.0)
    w = torch.ones(2, 4)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(80):
        loss = joints_mse_loss(m(x), target, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, losses[::10]


def test_load_report_reaches_the_console(tmp_path, caplog):
    """The key report goes to Lightning's logger (INFO, console handler outside pytest), not to a
    logger whose effective level (WARNING) drops it. caplog sees only records that pass levels."""
    path = tmp_path / "hrnet_tiny_imagenet.pth"
    torch.save(_imagenet_like(tiny()), path)
    tiny(cam_placement="paper", pretrained=str(path))
    err = caplog.text
    assert "loaded imagenet weights from" in err and "hrnet_tiny_imagenet.pth" in err
    assert "final_layer.weight" in err and "classifier.weight" in err
