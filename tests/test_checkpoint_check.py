"""Checkpoint arguments are classified without running pickled code, and a wrong one is one line."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from callbacks.checkpoint_check import (
    CheckpointError,
    classify_checkpoint,
    load_poseformer_file,
    require_checkpoint,
)
from pose2d.hrnet import PoseHighResolutionNet
from pose3d.lifter import PoseLifter

HRNET_TINY = {"width": 8, "num_blocks": 1, "stage_modules": [1, 1, 1], "stem_channels": 8}
LIFTER_TINY = dict(spatial_dim=8, spatial_depth=1, temporal_depth=1, spatial_heads=2,
                   temporal_heads=2, use_sam=False, use_tam=False, head="center",
                   dropout=0.0, drop_path=0.0)  # fmt: skip
# Our lifter names → the official PoseFormer names (the inverse of the conversion's renames).
TO_POSEFORMER = [("joint_embed.", "Spatial_patch_to_embedding."),
                 ("spatial_pos", "Spatial_pos_embed"), ("temporal_pos", "Temporal_pos_embed"),
                 ("spatial_blocks.", "Spatial_blocks."), ("temporal_blocks.", "blocks."),
                 ("spatial_norm.", "Spatial_norm."), ("temporal_norm.", "Temporal_norm."),
                 ("head_norm.", "head.0."), ("head_linear.", "head.1.")]  # fmt: skip


def _hrnet_sd() -> dict[str, torch.Tensor]:
    return PoseHighResolutionNet(**HRNET_TINY).state_dict()


def _lifter_sd(frames: int = 9) -> dict[str, torch.Tensor]:
    return PoseLifter(frames=frames, **LIFTER_TINY).state_dict()


def _lightning(sd: dict, hp: dict) -> dict:
    return {
        "epoch": 1,
        "global_step": 10,
        "pytorch-lightning_version": "2.6.0",
        "state_dict": {f"model.{k}": v for k, v in sd.items()},
        "hyper_parameters": hp,
    }


def _poseformer(frames: int = 27, rng_object: bool = False) -> dict:
    pos = {}
    for k, v in _lifter_sd(frames).items():
        for ours, theirs in TO_POSEFORMER:
            if k.startswith(ours):
                k = theirs + k[len(ours) :]
                break
        pos[f"module.{k}"] = v
    rng = np.random.RandomState(1234)
    optimizer = {"state": {}, "param_groups": [{"lr": 1e-4}]}
    state = rng if rng_object else rng.get_state()  # VideoPose3D saves the RandomState itself
    return {"epoch": 80, "lr": 1e-4, "random_state": state, "optimizer": optimizer,
            "model_pos": pos}  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, object]:
    d = tmp_path_factory.mktemp("ckpts")
    hr = _hrnet_sd()
    made = {
        "det.ckpt": _lightning(hr, {"width": 8}),
        "lift.ckpt": _lightning(_lifter_sd(9), {"frames": 9}),
        "pose_hrnet_w8.pth": hr,
        "pose_hrnet_module.pth": {f"module.{k}": v for k, v in hr.items()},
        "pose_hrnet_wrapped.pth": {"state_dict": hr, "epoch": 3},
        "hrnet_w8_imagenet.pth": {**hr, "classifier.weight": torch.zeros(10, 4)},
        "detected27f.bin": _poseformer(27),
        "detected81f.bin": _poseformer(81, rng_object=True),
        "tensors.pt": {"a.weight": torch.zeros(2), "b.bias": torch.zeros(1)},
        "foreign.ckpt": _lightning({"encoder.weight": torch.zeros(2)}, {}),
    }
    for name, obj in made.items():
        torch.save(obj, d / name)
    (d / "empty.ckpt").write_bytes(b"")
    (d / "notes.ckpt").write_text("these are not weights\n")
    raw = (d / "det.ckpt").read_bytes()
    (d / "truncated.ckpt").write_bytes(raw[: len(raw) // 2])
    with open(d / "payload.ckpt", "wb") as f:  # a pickled object whose loading would run code
        pickle.dump({"state_dict": {}, "x": Exploit()}, f)
    return {"dir": d}


class Exploit:
    def __reduce__(self):
        return (print, ("executed",))


@pytest.mark.parametrize(
    ("name", "kind", "detail"),
    [
        ("det.ckpt", "lightning_2d", "HRNet-W8, 17 joints"),
        ("lift.ckpt", "lightning_3d", "T=9"),
        ("pose_hrnet_w8.pth", "hrnet_state_dict", "HRNet-W8, 17 joints"),
        ("pose_hrnet_module.pth", "hrnet_state_dict", "HRNet-W8, 17 joints"),
        ("pose_hrnet_wrapped.pth", "hrnet_state_dict", "HRNet-W8, 17 joints"),
        ("hrnet_w8_imagenet.pth", "hrnet_imagenet", "width 8"),
        ("detected27f.bin", "poseformer", "T=27"),
        ("detected81f.bin", "poseformer", "T=81"),
        ("tensors.pt", "other", "a plain state dict of 2 tensors, first key 'a.weight'"),
        ("foreign.ckpt", "other", "a Lightning checkpoint of another model (1 tensors)"),
        ("empty.ckpt", "unreadable", "empty file"),
        ("notes.ckpt", "unreadable", "not a zip or pickle file"),
        ("truncated.ckpt", "unreadable", "truncated or damaged zip archive"),
    ],
)
def test_classify(files, name, kind, detail):
    info = classify_checkpoint(files["dir"] / name)
    assert (info.kind, info.detail) == (kind, detail)


def test_pickled_payload_is_not_executed(files, capsys):
    info = classify_checkpoint(files["dir"] / "payload.ckpt")
    assert info.kind == "pickled"
    assert "builtins.print" in info.detail
    assert "executed" not in capsys.readouterr().out


def test_poseformer_file_loads_with_its_numpy_rng_state(files):
    with pytest.raises(pickle.UnpicklingError):  # what a plain weights-only load does
        torch.load(files["dir"] / "detected27f.bin", weights_only=True)
    obj = load_poseformer_file(files["dir"] / "detected27f.bin")
    state = np.random.RandomState(1234).get_state()
    assert obj["random_state"][0] == "MT19937"
    np.testing.assert_array_equal(obj["random_state"][1], state[1])
    assert obj["model_pos"]["module.Temporal_pos_embed"].shape == (1, 27, 8 * 17)
    obj = load_poseformer_file(files["dir"] / "detected81f.bin")
    assert obj["random_state"].randint(1000) == np.random.RandomState(1234).randint(1000)
    with pytest.raises(CheckpointError, match="is a 3D lifter checkpoint"):
        load_poseformer_file(files["dir"] / "lift.ckpt")


def _message(path, accept, role, **kw) -> str:
    with pytest.raises(CheckpointError) as e:
        require_checkpoint(path, accept, role, **kw)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and role in msg
    return msg


def test_require_messages(files):
    d = files["dir"]
    msg = _message(d / "det.ckpt", ("lightning_3d",), "--lifter", hint="pass it as --detector")
    assert "is a 2D detector checkpoint of python -m pose2d fit (HRNet-W8, 17 joints)" in msg
    assert msg.endswith("pass it as --detector")
    msg = _message(d / "detected27f.bin", ("lightning_3d",), "--ckpt_path")
    assert f"python -m pose3d.convert poseformer {d / 'detected27f.bin'} --frames 27" in msg
    msg = _message(d / "pose_hrnet_w8.pth", ("lightning_2d",), "--ckpt_path")
    assert "plain HRNet pose state dict" in msg and "--model.pretrained=" in msg
    msg = _message(d / "tensors.pt", ("lightning_3d",), "--lifter")
    assert "has no model configuration" in msg
    msg = _message(d / "notes.ckpt", ("lightning_2d",), "--detector")
    assert "not a PyTorch checkpoint" in msg and "python -m pose2d fit" in msg
    msg = _message(d / "missing.ckpt", ("lightning_2d",), "--ckpt_path")
    assert msg.endswith("file not found")
    assert require_checkpoint(d / "lift.ckpt", ("lightning_3d",)).frames == 9


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_eval_3d_with_a_2d_checkpoint_stops_before_the_run_folder(files, tmp_path, capsys):
    from pose3d.__main__ import cli

    run_dir = tmp_path / "eval"
    ckpt = files["dir"] / "det.ckpt"
    rc = cli(["test", "--config", "configs/pose3d/synthetic.yaml", f"--ckpt_path={ckpt}",
              "--trainer.accelerator=cpu", f"--run.dir={run_dir}"])  # fmt: skip
    line = _one_error_line(capsys)
    assert rc == 2 and not run_dir.exists()
    assert line == (
        f"error: --ckpt_path {ckpt} is a 2D detector checkpoint of python -m pose2d fit "
        "(HRNet-W8, 17 joints), but a 3D lifter checkpoint is expected here; give a .ckpt "
        "written by python -m pose3d fit (runs/pose3d/<run>/checkpoints/)"
    )


def test_resume_from_a_checkpoint_of_the_other_stage(files, tmp_path, capsys):
    from pose3d.__main__ import cli

    run_dir = tmp_path / "run"
    ckpt = files["dir"] / "det.ckpt"
    rc = cli(["fit", "--config", "configs/pose3d/synthetic.yaml", f"--ckpt_path={ckpt}",
              "--trainer.accelerator=cpu", f"--run.dir={run_dir}"])  # fmt: skip
    line = _one_error_line(capsys)
    assert rc == 2 and not run_dir.exists()
    assert line.startswith(f"error: --ckpt_path {ckpt} is a 2D detector checkpoint")


def test_eval_2d_with_a_poseformer_file(files, tmp_path, capsys):
    from pose2d.__main__ import cli

    run_dir = tmp_path / "eval"
    ckpt = files["dir"] / "detected27f.bin"
    rc = cli(["validate", "--config", "configs/pose2d/synthetic.yaml", f"--ckpt_path={ckpt}",
              "--trainer.accelerator=cpu", f"--run.dir={run_dir}"])  # fmt: skip
    line = _one_error_line(capsys)
    assert rc == 2 and not run_dir.exists()
    assert "is an official PoseFormer checkpoint (T=27)" in line
    assert "a 2D detector checkpoint is expected here" in line


def test_infer_with_swapped_checkpoints(files, tmp_path, capsys):
    from pose3d.infer import cli

    out = tmp_path / "out"
    d = files["dir"]
    rc = cli(["--input", str(tmp_path / "clip.mp4"), "--detector", str(d / "det.ckpt"),
              "--lifter", str(d / "det.ckpt"), "--out", str(out)])  # fmt: skip
    line = _one_error_line(capsys)
    assert rc == 2 and not out.exists()
    assert line.startswith(f"error: --lifter {d / 'det.ckpt'} is a 2D detector checkpoint")
    assert line.endswith("did you swap --detector and --lifter?")
    # an official plain HRNet state dict is a valid detector: the check passes it (the run then
    # stops at the missing input), while an ImageNet classification file is refused
    rc = cli(["--input", str(tmp_path / "clip.mp4"), "--detector", str(d / "pose_hrnet_w8.pth"),
              "--lifter", str(d / "lift.ckpt"), "--out", str(out)])  # fmt: skip
    line = _one_error_line(capsys)
    assert rc == 2 and "clip.mp4" in line and "HRNet" not in line


def test_exports_check_their_checkpoint_argument(files, tmp_path, capsys):
    from callbacks.user_error import exit_code
    from pose2d.export_keypoints import main as export_keypoints
    from pose3d.export_onnx import main as export_lifter

    d = files["dir"]
    rc = exit_code(export_lifter, ["--ckpt", str(d / "det.ckpt"), "--out", str(tmp_path / "x")])
    assert rc == 2 and "--ckpt " in _one_error_line(capsys) and not (tmp_path / "x").exists()
    rc = exit_code(export_keypoints, ["--root", str(tmp_path), "--detector", str(d / "lift.ckpt")])
    line = _one_error_line(capsys)
    assert rc == 2 and line.startswith(f"error: --detector {d / 'lift.ckpt'} is a 3D lifter")
