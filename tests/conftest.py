"""Shared test set-up: W&B never touches the network, GPU tests skip themselves without CUDA."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(autouse=True)
def _wandb_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_SILENT", "true")


@pytest.fixture
def one_thread():
    """Tiny tensors: one torch thread is faster and immune to oversubscription on a shared box."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cli_parsers() -> dict:
    """``{"pose2d"|"pose3d": (root parser, fit parser)}`` of the real CLIs, built once (parse
    only: nothing is instantiated)."""
    import importlib

    from jsonargparse import capture_parser

    out = {}
    for pkg in ("pose2d", "pose3d"):
        main = importlib.import_module(f"{pkg}.__main__").main
        root = capture_parser(lambda main=main: main(args=["fit"]))
        out[pkg] = (root, root._subcommands_action._name_parser_map["fit"])
    return out


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
