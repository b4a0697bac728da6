"""pose3d.convert: an official PoseFormer checkpoint (written here in exactly the official layout
from a model of ours through the inverse key mapping) becomes a lifter checkpoint with identical
outputs; wrong T, foreign and truncated files are one-line errors (exit status 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pose3d.checkpoint import architecture_args, load_lifter
from pose3d.convert import main, rename_poseformer_key, to_poseformer_key
from pose3d.lifter import PoseLifter

# A reduced PoseFormer (the official heads 8, MLP ratio 2, LayerNorm eps) so the test stays fast.
SMALL = dict(spatial_dim=8, spatial_depth=2, temporal_depth=2, use_sam=False, use_tam=False,
             head="center", dropout=0.0, drop_path=0.0)  # fmt: skip


def official_file(path: Path, frames: int = 9) -> PoseLifter:
    """Write ``run_poseformer.py``'s checkpoint dict for a random model; return the model."""
    torch.manual_seed(frames)
    model = PoseLifter(frames, **SMALL)
    with torch.no_grad():  # positional embeddings start at 0: make every tensor informative
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    opt = torch.optim.AdamW(model.parameters(), lr=4e-5, weight_decay=0.1)
    model(torch.randn(2, frames, 17, 2)).square().mean().backward()
    opt.step()
    rng = np.random.RandomState(1234)  # VP3D's ChunkedGenerator.random_state(): the object
    rng.permutation(100)
    torch.save(
        {
            "epoch": 73,
            "lr": 4e-5 * 0.99**72,
            "random_state": rng,
            "optimizer": opt.state_dict(),
            "model_pos": {to_poseformer_key(k): v for k, v in model.state_dict().items()},
        },
        path,
    )
    return model.eval()


def test_key_renames_are_the_official_ones() -> None:
    facts = {
        "module.Spatial_patch_to_embedding.weight": "joint_embed.weight",
        "module.Spatial_pos_embed": "spatial_pos",
        "module.Temporal_pos_embed": "temporal_pos",
        "module.Spatial_blocks.3.attn.qkv.weight": "spatial_blocks.3.attn.qkv.weight",
        "module.blocks.0.mlp.fc2.bias": "temporal_blocks.0.mlp.fc2.bias",
        "module.Spatial_norm.weight": "spatial_norm.weight",
        "module.Temporal_norm.bias": "temporal_norm.bias",
        "module.weighted_mean.weight": "weighted_mean.weight",
        "module.head.0.weight": "head_norm.weight",
        "module.head.1.bias": "head_linear.bias",
    }
    for official, ours in facts.items():
        assert rename_poseformer_key(official) == ours
        assert to_poseformer_key(ours) == official
    assert rename_poseformer_key("module.classifier.weight") is None


def test_convert_gives_identical_outputs(tmp_path, capsys) -> None:
    src, out = tmp_path / "detected9f.bin", tmp_path / "detected9f.ckpt"
    model = official_file(src)
    assert main(["poseformer", str(src), "--frames", "9", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*tmp*"))  # the atomic write left no temp file
    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    hp = ckpt["hyper_parameters"]
    assert (hp["use_sam"], hp["use_tam"], hp["head"], hp["frames"]) == (False, False, "center", 9)
    assert ckpt["converted_from"]["epoch"] == 73
    lifter = load_lifter(out)
    x = torch.randn(4, 9, 17, 2)
    with torch.no_grad():
        assert torch.equal(lifter(x), model(x))
    # evaluation builds the checkpoint's model whatever the config says; the command line wins
    args = ["test", "--config", "configs/pose3d/paper.yaml", f"--ckpt_path={out}",
            "--model.use_tam=true"]  # fmt: skip
    extra = architecture_args(args)
    assert "--model.use_sam=false" in extra and "--model.head=center" in extra
    assert "--data.init_args.frames=9" in extra and not any("use_tam" in e for e in extra)
    assert architecture_args(["fit", f"--ckpt_path={out}"]) == []


def _error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_wrong_frames_foreign_and_truncated_files(tmp_path, capsys) -> None:
    src, out = tmp_path / "detected9f.bin", tmp_path / "out.ckpt"
    official_file(src)
    err = _error(capsys, ["poseformer", str(src), "--frames", "81", "--out", str(out)])
    assert "T=9" in err and "--frames 9" in err
    foreign = tmp_path / "pose_hrnet.pth"
    torch.save({"conv1.weight": torch.zeros(1), "final_layer.weight": torch.zeros(1)}, foreign)
    err = _error(capsys, ["poseformer", str(foreign), "--frames", "9", "--out", str(out)])
    assert str(foreign) in err and "not an official PoseFormer checkpoint" in err
    truncated = tmp_path / "cut.bin"
    truncated.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    err = _error(capsys, ["poseformer", str(truncated), "--frames", "9", "--out", str(out)])
    assert str(truncated) in err
    assert not out.exists() and not list(tmp_path.glob(".*tmp*"))  # nothing half-written
    out.write_text("mine")
    err = _error(capsys, ["poseformer", str(src), "--frames", "9", "--out", str(out)])
    assert "--overwrite" in err and out.read_text() == "mine"


@pytest.mark.parametrize("frames", [27])
def test_frames_read_from_the_temporal_embedding(tmp_path, frames) -> None:
    src, out = tmp_path / "gt27f.bin", tmp_path / "gt27f.ckpt"
    official_file(src, frames)
    assert main(["poseformer", str(src), "--frames", str(frames), "--out", str(out)]) == 0
    assert load_lifter(out).frames == frames
