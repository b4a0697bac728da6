"""Speed levers: the side-by-side benchmarks' CPU mode, and the trainer options that only change how
fast the same computation runs (compile, fused Adam, layer implementation)."""

from __future__ import annotations

import json

import pytest
import torch

from pose3d.bench import DENOMINATOR, main, overheads
from pose3d.module import LiftingModule

TINY = dict(spatial_dim=8, spatial_depth=1, temporal_depth=1, spatial_heads=2, temporal_heads=2,
            sam_groups=2, frames=9)  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


def test_bench3d_cpu_table_and_json(tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    res = main(["--frames", "3", "--batch", "2", "--steps", "2", "--warmup", "0", "--tiny",
                "--json", str(out)])  # fmt: skip
    text = capsys.readouterr().out
    names = [d["row"] for d in res["rows"]]
    assert names == ["reference", DENOMINATOR, "reference paper", "fast PoseFormer", "fast paper"]
    assert all(d["seq_per_s"] > 0 and d["steps"] == 2 for d in res["rows"])
    den = next(d for d in res["rows"] if d["row"] == DENOMINATOR)
    assert den["ratio"] == 1.0 and den["precision"] == "bf16"
    ref = res["rows"][0]
    assert (ref["layer_impl"], ref["attn_impl"], ref["precision"], ref["model"]) == (
        "reference", "math", "32", "poseformer")  # fmt: skip
    assert {o["mode"] for o in res["overheads"]} == {"reference", "fast"}
    assert json.loads(out.read_text()) == json.loads(json.dumps(res))
    assert "| 3 | 2 | fast paper | 32 |" in text and "paper model over PoseFormer config" in text
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write left no temp file


def test_overheads_formula() -> None:
    rows = [{"frames": 9, "batch": 4, "row": "fast PoseFormer", "seq_per_s": 115.0},
            {"frames": 9, "batch": 4, "row": "fast paper", "seq_per_s": 100.0}]  # fmt: skip
    (o,) = overheads(rows)
    assert o["mode"] == "fast" and o["overhead"] == pytest.approx(0.15)


def test_bench2d_cpu_table_and_json(tmp_path) -> None:
    from pose2d.bench import main as main2d

    res = main2d(["--width", "8", "--batch", "1", "--input", "64", "64", "--steps", "1",
                  "--warmup", "0", "--tiny", "--json", str(tmp_path / "b.json")])  # fmt: skip
    rows = {d["row"]: d for d in res["rows"]}
    assert set(rows) == {"reference", DENOMINATOR, "reference paper", "fast HRNet", "fast paper"}
    assert rows[DENOMINATOR]["ratio"] == 1.0 and rows["fast paper"]["channels_last"]
    assert rows["reference paper"]["cam_placement"] == "paper"
    assert all(d["images_per_s"] > 0 for d in rows.values())


@pytest.mark.slow  # importing torch._dynamo alone takes seconds
def test_compile_mode_keeps_state_dict_keys_and_rejects_unknown() -> None:
    module = LiftingModule(**TINY, compile_mode="default")
    keys = set(module.state_dict())
    compiled = module._train_model()  # wraps lazily; compilation happens on the first call
    assert compiled is not module.model and set(module.state_dict()) == keys
    eager = LiftingModule(**TINY)
    assert eager._train_model() is eager.model
    with pytest.raises(ValueError, match="compile_mode"):
        LiftingModule(**TINY, compile_mode="fast")


def test_fused_adam_only_on_cuda() -> None:
    opt = LiftingModule(**TINY).configure_optimizers()["optimizer"]
    assert not opt.defaults.get("fused")  # CPU: PyTorch's default implementation


@pytest.mark.gpu
def test_fused_adam_and_layer_impl_on_cuda() -> None:
    module = LiftingModule(**TINY).cuda()
    assert module.configure_optimizers()["optimizer"].defaults["fused"] is True
    off = LiftingModule(**TINY, fused_optimizer=False).cuda()
    assert not off.configure_optimizers()["optimizer"].defaults.get("fused")


@pytest.mark.gpu
def test_compiled_training_step_matches_eager_on_cuda() -> None:
    x = torch.randn(4, 9, 17, 2, device="cuda")
    outs = []
    for mode in ("off", "default"):
        torch.manual_seed(0)
        module = LiftingModule(**TINY, dropout=0.0, drop_path=0.0, compile_mode=mode).cuda()
        outs.append(module._train_model()(x))
    torch.testing.assert_close(outs[0], outs[1], atol=1e-4, rtol=1e-4)
