"""The PoseFormer configuration trains as the official PoseFormer/VideoPose3D scripts do.

Each test restates one official behaviour from its definition (VideoPose3D ``ChunkedGenerator``
with ``chunk_length=1`` and ``augment``, ``mpjpe`` on the root-zeroed centre frame, AdamW with
weight decay 0.1 and ``lr *= lr_decay`` on the param groups after each epoch, PyTorch's default
initialisation with zero positional embeddings) and checks our training path against it.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader

from datamodules.h36m import H36MDataModule, prepare_h36m
from datamodules.sequence_cache import read_cache
from datamodules.synthetic_h36m import generate_synthetic_h36m
from pose3d.lifter import PoseLifter
from pose3d.module import LiftingModule
from pose3d.sam import SpatialAttentionModule
from pose3d.tam import TemporalAttentionModule

REPO = Path(__file__).resolve().parents[1]
# VideoPose3D's H36M-17 lists: keypoints_symmetry of the 2D files and the skeleton's joints.
VP3D_LEFT, VP3D_RIGHT = [4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]


pytestmark = pytest.mark.usefixtures("one_thread")


def _config(name: str) -> dict:
    return yaml.safe_load((REPO / "configs" / "pose3d" / name).read_text())


def _poseformer_module(frames: int, **overrides) -> LiftingModule:
    return LiftingModule(frames=frames, **{**_config("poseformer.yaml")["model"], **overrides})


@pytest.fixture(scope="module")
def small_h36m(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("h36m")
    generate_synthetic_h36m(root, seed=0, frames=12, subjects=("S1", "S9"),
                            actions=("Walking", "Eating"), subactions=1)  # fmt: skip
    prepare_h36m(root, "synthetic_det")
    return root


# -- training windows and flips ----------------------------------------------------------------
def _official_epoch(pos2d: list, pos3d: list, frames: int, kps: list, joints: list) -> dict:
    """{(sequence, frame, flipped): (2D window (T, J, 2), 3D target (J, 3))} of one augmented
    epoch of ChunkedGenerator(chunk_length=1, pad=(T-1)//2): a chunk per frame, edge padding,
    and every chunk a second time mirrored (x negated, L/R swapped)."""
    pad = (frames - 1) // 2
    (kl, kr), (jl, jr) = kps, joints
    out = {}
    for i, (x2d, x3d) in enumerate(zip(pos2d, pos3d, strict=True)):
        padded = np.pad(x2d, ((pad, pad), (0, 0), (0, 0)), "edge")
        for f in range(len(x2d)):
            w2d, w3d = padded[f : f + frames].copy(), x3d[f].copy()
            w3d[0] = 0.0  # run.py zeroes the root before the loss
            out[(i, f, False)] = (w2d, w3d)
            m2d, m3d = w2d.copy(), w3d.copy()
            m2d[..., 0] *= -1
            m2d[:, kl + kr] = m2d[:, kr + kl]
            m3d[..., 0] *= -1
            m3d[jl + jr] = m3d[jr + jl]
            out[(i, f, True)] = (m2d, m3d)
    return out


def test_training_epoch_holds_every_window_as_is_and_mirrored_like_the_official_generator(
    small_h36m: Path,
) -> None:
    with np.load(small_h36m / "data_2d_h36m_synthetic_det.npz", allow_pickle=True) as f:
        symmetry = f["metadata"].item()["keypoints_symmetry"]
    assert [list(s) for s in symmetry] == [VP3D_LEFT, VP3D_RIGHT]
    frames = 5
    dm = H36MDataModule(root=str(small_h36m), keypoints="synthetic_det", frames=frames,
                        batch_size=7, num_workers=0, train_subjects=("S1",),
                        test_subjects=("S9",))  # fmt: skip
    dm.setup("fit")
    cache = read_cache(dm.cache_folder)
    train_seqs = [i for i, r in enumerate(cache.sequences) if r["subject"] == "S1"]
    sl = [slice(cache.offsets[i], cache.offsets[i] + cache.lengths[i]) for i in train_seqs]
    expected = _official_epoch([cache.pos2d[s] for s in sl], [cache.pos3d[s] for s in sl],
                               frames, symmetry, (VP3D_LEFT, VP3D_RIGHT))  # fmt: skip
    n = len(dm.train_set)
    assert n == len(expected) == 2 * 2 * 4 * 12  # 2 actions × 4 cameras × 12 frames, twice
    got, seen = {}, []
    for raw in dm.train_dataloader():  # one shuffled epoch
        assert torch.equal(raw["flip_pending"], raw["index"] >= n // 2)
        batch = dm.on_after_batch_transfer(raw, 0)  # Lightning's hook mirrors the flagged ones
        assert "flip_pending" not in batch and torch.equal(batch["flip"], batch["index"] >= n // 2)
        seen += batch["index"].tolist()
        for k in range(len(batch["index"])):
            key = (train_seqs.index(int(batch["seq"][k])), int(batch["frame"][k]),
                   int(batch["index"][k]) >= n // 2)  # fmt: skip
            got[key] = (batch["input_2d"][k].numpy(), batch["target_3d"][k, frames // 2].numpy())
    assert sorted(seen) == list(range(n)) and seen != sorted(seen)  # a permutation, shuffled
    assert got.keys() == expected.keys()
    for key, (w2d, w3d) in expected.items():
        np.testing.assert_array_equal(got[key][0], w2d.astype(np.float32))
        np.testing.assert_array_equal(got[key][1], w3d.astype(np.float32))


class _Recorder(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.batches: list[dict] = []

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        self.batches.append({k: v.clone() for k, v in batch.items()})
        return (self.w * 0).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_fit_mirrors_the_flagged_windows_on_the_device_before_the_training_step(
    small_h36m: Path, tmp_path: Path
) -> None:
    """The loader leaves the mirror to the DataModule's on_after_batch_transfer: what the
    training step receives equals the windows mirrored in the loader (flip_at="loader")."""
    dm = H36MDataModule(root=str(small_h36m), keypoints="synthetic_det", frames=5,
                        batch_size=16, num_workers=0, train_subjects=("S1",),
                        test_subjects=("S9",))  # fmt: skip
    rec = _Recorder()
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=4, logger=False,
                         limit_val_batches=0, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(rec, datamodule=dm)
    assert len(rec.batches) == 4
    reference = copy.copy(dm.train_set)
    reference.flip_at = "loader"
    n = len(dm.train_set)
    for batch in rec.batches:
        assert "flip_pending" not in batch
        assert torch.equal(batch["flip"], batch["index"] >= n // 2)
        expected = reference.__getitems__(batch["index"].numpy())
        assert expected.keys() == batch.keys()
        for k in expected:
            assert torch.equal(batch[k], expected[k]), k
    assert 0 < sum(int(b["flip"].sum()) for b in rec.batches) < 4 * 16
    module = _poseformer_module(5)  # a loader handed to fit() without its DataModule
    with pytest.raises(RuntimeError, match="flip_pending"):
        module.training_step(dm.train_set.__getitems__([0, n - 1]), 0)


def test_random_and_no_flip_modes_keep_one_copy_per_window(small_h36m: Path) -> None:
    kw = dict(root=str(small_h36m), keypoints="synthetic_det", frames=3, batch_size=8,
              num_workers=0, train_subjects=("S1",), test_subjects=("S9",))  # fmt: skip
    sizes = {}
    for name, extra in (("double", {}), ("random", {"flip_mode": "random"}),
                        ("off", {"flip_augment": False})):  # fmt: skip
        dm = H36MDataModule(**kw, **extra)
        dm.setup("fit")
        sizes[name] = len(dm.train_set)
        assert len(dm.test_set) == 2 * 4 * 12  # evaluation windows are never doubled
    assert sizes == {"double": 2 * 96, "random": 96, "off": 96}
    with pytest.raises(ValueError, match="flip mode"):
        H36MDataModule(**kw, flip_mode="sometimes")


# -- loss --------------------------------------------------------------------------------------
def test_loss_is_the_official_mpjpe_of_the_root_zeroed_centre_frame() -> None:
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(6, 1, 17, 3, generator=g) * 0.2
    target = torch.randn(6, 9, 17, 3, generator=g) * 0.2
    target[:, :, 0] = 0.0  # our cache stores root-relative poses with the root exactly 0
    official = torch.mean(torch.norm(pred - target[:, 4:5], dim=-1))  # VP3D mpjpe, metres
    module = _poseformer_module(9)
    terms = module.criterion(pred, target)
    torch.testing.assert_close(terms["loss"], official, rtol=0, atol=1e-7)
    assert terms["loss_t"] == 0 and terms["loss_v"] == 0


# -- optimiser, schedule, and nothing added by the Lightning loop -------------------------------
def test_optimiser_is_adamw_on_every_parameter_with_per_epoch_decay_and_no_warmup() -> None:
    module = _poseformer_module(9)
    cfg = module.configure_optimizers()
    opt, sched = cfg["optimizer"], cfg["lr_scheduler"]
    assert type(opt) is torch.optim.AdamW and len(opt.param_groups) == 1
    group = opt.param_groups[0]
    assert {id(p) for p in group["params"]} == {id(p) for p in module.parameters()}
    assert group["weight_decay"] == 0.1 and group["betas"] == (0.9, 0.999)
    assert group["eps"] == 1e-8 and group["amsgrad"] is False
    assert sched["interval"] == "epoch"
    for epoch in range(4):  # lr *= 0.99 on the param groups after every epoch, from epoch 0
        assert group["lr"] == pytest.approx(1e-4 * 0.99**epoch, rel=1e-12)
        opt.step()
        sched["scheduler"].step()
    trainer_cfg = _config("poseformer.yaml")["trainer"]
    assert not {"gradient_clip_val", "accumulate_grad_batches", "precision"} & trainer_cfg.keys()


class _OneBatch(pl.LightningDataModule):
    def __init__(self, batch: dict) -> None:
        super().__init__()
        self.batch = batch

    def train_dataloader(self) -> DataLoader:
        return DataLoader([self.batch] * 2, batch_size=None)  # both steps in epoch 0


def test_one_training_step_equals_a_plain_adamw_step_on_the_official_loss(tmp_path) -> None:
    """No clipping, scaling or extra term: the Lightning step with the PoseFormer config's
    trainer settings moves the weights exactly as the official loop body would."""
    small = dict(
        spatial_dim=8,
        spatial_depth=1,
        temporal_depth=1,
        spatial_heads=2,
        temporal_heads=2,
        drop_path=0.0,
    )  # fmt: skip (drop path off: no RNG)
    torch.manual_seed(0)
    module = _poseformer_module(5, **small)
    reference = _poseformer_module(5, **small)
    reference.load_state_dict(module.state_dict())
    g = torch.Generator().manual_seed(1)
    batch = {"input_2d": torch.randn(8, 5, 17, 2, generator=g) * 0.3,
             "target_3d": torch.randn(8, 5, 17, 3, generator=g) * 0.2}  # fmt: skip
    batch["target_3d"][:, :, 0] = 0.0

    opt = torch.optim.AdamW(reference.parameters(), lr=1e-4, weight_decay=0.1)
    for _ in range(2):  # official loop body: zero_grad, mpjpe(centre), backward, step
        opt.zero_grad()
        pred = reference.model(batch["input_2d"])
        torch.mean(torch.norm(pred - batch["target_3d"][:, 2:3], dim=-1)).backward()
        opt.step()

    trainer_cfg = {k: v for k, v in _config("poseformer.yaml")["trainer"].items()
                   if k not in ("max_epochs", "log_every_n_steps")}  # fmt: skip
    trainer = pl.Trainer(**trainer_cfg, accelerator="cpu", devices=1, max_steps=2, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(module, datamodule=_OneBatch(batch))
    for (name, p), q in zip(module.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-7, msg=name)


# -- initialisation ----------------------------------------------------------------------------
def _check_default_init(model: nn.Module) -> int:
    """Every parameter as PyTorch's default init leaves it; returns how many were checked."""
    checked = 0
    for mod_name, mod in model.named_modules():
        for name, p in mod.named_parameters(recurse=False):
            where = f"{mod_name}.{name}"
            if isinstance(mod, nn.LayerNorm | nn.GroupNorm):
                assert torch.all(p == (1.0 if name == "weight" else 0.0)), where
            elif isinstance(mod, nn.Linear | nn.Conv1d):
                fan_in = mod.weight[0].numel()  # in_features, or in_channels/groups × kernel
                bound = 1.0 / math.sqrt(fan_in)  # kaiming_uniform(a=√5) = U(±1/√fan_in)
                assert p.abs().max() <= bound, where
                if p.numel() >= 2000:  # U(-b, b) has std b/√3
                    assert p.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05), where
                    assert abs(p.mean().item()) < 0.05 * bound, where
            elif name in ("spatial_pos", "temporal_pos"):
                assert torch.all(p == 0), where  # nn.Parameter(torch.zeros(...)), no trunc_normal
            else:
                raise AssertionError(f"unexpected parameter {where}")
            checked += p.numel()
    return checked


def test_poseformer_starts_from_pytorch_default_init_and_zero_positions() -> None:
    torch.manual_seed(0)
    module = _poseformer_module(27)
    assert _check_default_init(module.model) == sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("init", ["default", "identity"])
def test_sam_tam_init_options(init: str) -> None:
    torch.manual_seed(0)
    model = PoseLifter(9, sam_tam_init=init, dropout=0.0, drop_path=0.0)
    sams = [m for m in model.modules() if isinstance(m, SpatialAttentionModule)]
    tams = [m for m in model.modules() if isinstance(m, TemporalAttentionModule)]
    assert len(sams) == len(tams) == 4
    if init == "default":
        assert _check_default_init(model) == sum(p.numel() for p in model.parameters())
        return
    d = 32
    for sam in sams:
        assert torch.all(sam.conv2.weight == 0) and torch.all(sam.conv2.bias == 0)
        assert sam.conv1.weight.abs().max() > 0
    for tam in tams:
        assert torch.all(tam.qkv.weight[2 * d :] == 0) and torch.all(tam.qkv.bias[2 * d :] == 0)
        assert tam.qkv.weight[: 2 * d].abs().min() > 0  # Q and K keep their default init
    # every SAM/TAM is the identity: the network computes what it computes without them
    plain = PoseLifter(9, use_sam=False, use_tam=False, dropout=0.0, drop_path=0.0)
    assert model.load_state_dict(plain.state_dict(), strict=False).unexpected_keys == []
    x = torch.randn(3, 9, 17, 2)
    torch.testing.assert_close(model.eval()(x), plain.eval()(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="sam_tam_init"):
        PoseLifter(9, sam_tam_init="zeros")
