"""ONNX export of both networks (tiny configurations) matches PyTorch under onnxruntime."""

from __future__ import annotations

import pytest
import torch

from pose2d.export_onnx import export_onnx, onnx_parity

ort = pytest.importorskip("onnxruntime")


def test_generic_module_parity_and_dynamic_batch(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.GELU(), torch.nn.Linear(8, 3))
    path = export_onnx(net, torch.randn(2, 6), tmp_path / "m.onnx")
    assert onnx_parity(net, path, torch.randn(5, 6)) < 1e-5  # batch 5 ≠ export batch 2


def test_hrnet_parity(tmp_path):
    from pose2d.hrnet import PoseHighResolutionNet

    torch.manual_seed(0)
    net = PoseHighResolutionNet(
        width=8,
        num_blocks=1,
        stage_modules=(1, 1, 1),
        stem_channels=16,
        cam_placement="paper",
        cam_blocks=1,
    ).eval()
    path = export_onnx(net, torch.randn(2, 3, 128, 96), tmp_path / "d.onnx", "image", "heatmaps")
    err = onnx_parity(net, path, torch.randn(3, 3, 128, 96))
    assert err < 1e-4, err


@pytest.mark.parametrize("head", ["sequence", "center"])
def test_lifter_parity(tmp_path, head):
    from pose3d.lifter import PoseLifter

    torch.manual_seed(0)
    net = PoseLifter(
        frames=9, spatial_dim=8, spatial_depth=1, temporal_depth=1, spatial_heads=2,
        temporal_heads=2, head=head,
    ).eval()  # fmt: skip
    path = export_onnx(net, torch.randn(2, 9, 17, 2), tmp_path / "l.onnx", "pose_2d", "pose_3d")
    err = onnx_parity(net, path, torch.randn(3, 9, 17, 2) * 0.5)
    assert err < 1e-4, err
