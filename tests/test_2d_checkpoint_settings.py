"""Inference reads the detector's crop size and decoding from its checkpoint."""

import argparse

import torch

from pose2d.checkpoint import (
    add_decode_argument,
    detector_decode_method,
    detector_input_size,
)


def test_settings_come_from_the_checkpoint(tmp_path):
    path = tmp_path / "det.ckpt"
    torch.save(
        {
            "state_dict": {},
            "hyper_parameters": {"decode_method": "udp"},
            "datamodule_hyper_parameters": {"input_size": [96, 128]},
        },
        path,
    )
    assert detector_decode_method(path) == "udp"
    assert detector_input_size(path) == (96, 128)
    bare = tmp_path / "bare.ckpt"
    torch.save({"state_dict": {}}, bare)
    assert detector_decode_method(bare) == "standard"
    assert detector_input_size(bare) == (192, 256)


def test_decode_flag_defaults_to_none_so_the_checkpoint_decides():
    p = argparse.ArgumentParser()
    add_decode_argument(p)
    assert p.parse_args([]).decode is None
    assert p.parse_args(["--decode", "dark"]).decode == "dark"
