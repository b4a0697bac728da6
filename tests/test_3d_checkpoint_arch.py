"""Loading a checkpoint into a model of another architecture fails early with the flags to pass."""

from __future__ import annotations

import pytest

from pose3d.module import LiftingModule, architecture_mismatch

TINY = dict(spatial_dim=8, spatial_depth=1, temporal_depth=1, spatial_heads=2, temporal_heads=2,
            sam_groups=2, dropout=0.0, drop_path=0.0)  # fmt: skip


def test_mismatch_lists_only_architecture_keys() -> None:
    saved = dict(LiftingModule(frames=27, **TINY).hparams)
    current = dict(saved, frames=9, lr=5.0, attn_impl="math", sam_position="after_mlp")
    assert architecture_mismatch(saved, current) == {
        "frames": (27, 9),
        "sam_position": ("after_msa", "after_mlp"),
    }
    assert architecture_mismatch(saved, dict(saved, lr=5.0, dropout=0.3)) == {}
    assert architecture_mismatch({"lr": 1.0}, current) == {}  # old checkpoints: nothing to check


def test_on_load_checkpoint_names_the_flags() -> None:
    trained = LiftingModule(frames=27, **TINY)
    ckpt = {"hyper_parameters": dict(trained.hparams), "state_dict": trained.state_dict()}
    with pytest.raises(ValueError, match=r"--data.init_args.frames=27"):
        LiftingModule(frames=9, **TINY).on_load_checkpoint(ckpt)
    # Same shapes but another computation: must not load silently.
    with pytest.raises(ValueError, match=r"--model.tam_position=after_msa"):
        LiftingModule(frames=27, tam_position="before_msa", **TINY).on_load_checkpoint(ckpt)
    LiftingModule(frames=27, attn_impl="math", **TINY).on_load_checkpoint(ckpt)  # fine
