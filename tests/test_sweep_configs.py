"""configs/sweeps/*.yaml against W&B itself: its sweep-config validator, its grid, its agent's
command expansion, and our CLI parsing each command the agent would launch (parse only).

W&B's validator lives in the ``sweeps`` package (what ``wandb[sweeps]`` installs and
``wandb sweep --controller local`` calls); the ``wandb`` package has no offline copy of it.
``make install`` puts it, without its numpy<2-pinning requirements, into ``.venv/wandb-sweeps``;
it is loaded here without ``sweeps/__init__`` (which imports the scikit-learn Bayesian search).
"""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path

import pytest
import yaml

from callbacks.ablate import grid_points
from callbacks.sweep import agent_command, agent_plan, with_ddp

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = sorted((ROOT / "configs" / "sweeps").glob("*.yaml"))
WANDB_SWEEPS = Path(sys.prefix) / "wandb-sweeps" / "sweeps"


@pytest.fixture(scope="module")
def wandb_sweeps():
    """W&B's ``sweeps.config`` and ``sweeps.grid_search`` modules."""
    if not (WANDB_SWEEPS / "config" / "cfg.py").is_file():
        pytest.skip(f"W&B's sweeps validator not in {WANDB_SWEEPS.parent} (make install)")
    saved = {k: v for k, v in sys.modules.items() if k == "sweeps" or k.startswith("sweeps.")}
    pkg = types.ModuleType("sweeps")
    pkg.__path__ = [str(WANDB_SWEEPS)]
    sys.modules["sweeps"] = pkg
    try:
        cfg = importlib.import_module("sweeps.config")
        grid = importlib.import_module("sweeps.grid_search")
        yield cfg, grid
    finally:
        for k in [k for k in sys.modules if k == "sweeps" or k.startswith("sweeps.")]:
            del sys.modules[k]
        sys.modules.update(saved)


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_there_is_a_sweep_per_ablation_table() -> None:
    assert [p.stem for p in SWEEPS] == ["table10", "table6", "table7", "table8", "table9"]


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_file_has_what_wandb_documents(path: Path) -> None:
    sweep = _load(path)
    for key in ("program", "method", "metric", "parameters", "command"):
        assert key in sweep, f"{path.name}: no {key!r}"
    cmd = sweep["command"]
    pkg = "pose2d" if path.stem == "table7" else "pose3d"
    assert sweep["program"] == pkg
    assert cmd[:4] == ["${env}", "${interpreter}", "-m", "${program}"] and cmd[-1] == "${args}"
    # one GPU per run unless the sweep sets trainer.devices itself (after the command's flags)
    assert "--trainer.devices=1" in cmd
    assert sweep["metric"]["name"] == ("val/AP" if pkg == "pose2d" else "val/mpjpe")
    assert sweep["metric"]["goal"] == ("maximize" if pkg == "pose2d" else "minimize")
    assert (ROOT / cmd[cmd.index("--config") + 1]).is_file()


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_wandb_validator_accepts_sweep_and_its_grid_is_ablates(path: Path, wandb_sweeps) -> None:
    cfg, grid = wandb_sweeps
    sweep = _load(path)
    assert cfg.schema_violations_from_proposed_config(sweep) == []
    runs = [r for r in grid.grid_search_next_runs([], cfg.SweepConfig(sweep), n=1000) if r]
    wandb_points = [{k: v["value"] for k, v in r.config.items()} for r in runs]

    def key(p: dict) -> str:
        return json.dumps(p, sort_keys=True)

    # `make ablate` runs exactly the runs the W&B grid would schedule
    assert sorted(map(key, wandb_points)) == sorted(map(key, grid_points(sweep["parameters"])))


def test_wandb_validator_is_not_a_rubber_stamp(wandb_sweeps) -> None:
    cfg, _ = wandb_sweeps
    sweep = _load(SWEEPS[0])
    bad = {**sweep, "method": "grids", "parameters": {"model.lr": {"valuez": [1]}}}
    assert len(cfg.schema_violations_from_proposed_config(bad)) >= 2


@pytest.fixture(scope="module")
def fit_parsers(cli_parsers):
    return {pkg: fit for pkg, (_, fit) in cli_parsers.items()}


def _check_agent_commands_parse(path: Path, parsers: dict, every_point: bool) -> None:
    sweep = _load(path)
    points = grid_points(sweep["parameters"])
    for point in points if every_point else [points[0], points[-1]]:
        cmd = agent_command(point, sweep)
        assert cmd[:5] == ["/usr/bin/env", "python", "-m", sweep["program"], "fit"]
        cfg = parsers[sweep["program"]].parse_args(cmd[5:])
        assert str(cfg.trainer.devices) == "1"
        for k, v in point.items():  # every swept value reaches the parsed config as given
            node = cfg
            for part in k.split("."):
                node = node[part] if part in node else node["init_args"][part]
            assert node == v, (path.name, k, node, v)


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_agent_commands_parse_with_our_cli(path: Path, fit_parsers, monkeypatch) -> None:
    """The first and last grid point of each sweep (the slow test below parses them all)."""
    monkeypatch.chdir(ROOT)  # the agent starts in the repo root; --config paths are relative
    _check_agent_commands_parse(path, fit_parsers, every_point=False)


@pytest.mark.slow
def test_every_agent_command_of_every_sweep_parses(fit_parsers, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    for path in SWEEPS:
        _check_agent_commands_parse(path, fit_parsers, every_point=True)


def test_ddp_sweep_is_explicit_and_parses(fit_parsers, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    sweep = with_ddp(_load(ROOT / "configs/sweeps/table8.yaml"), 2)
    point = grid_points(sweep["parameters"])[0]
    cfg = fit_parsers["pose3d"].parse_args(agent_command(point, sweep)[5:])
    assert str(cfg.trainer.devices) == "2" and cfg.trainer.strategy == "ddp"


def test_one_pinned_agent_per_gpu_or_one_ddp_agent() -> None:
    assert agent_plan([0, 1]) == [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}]
    assert agent_plan([0, 1], ddp=2) == [{"CUDA_VISIBLE_DEVICES": "0,1"}]
    assert agent_plan([]) == [{}]


def test_make_sweep_dry_run_prints_pinned_agents_and_contacts_nobody(capsys, monkeypatch) -> None:
    from callbacks.sweep import main

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr("wandb.sweep", lambda *a, **k: pytest.fail("contacted W&B"))
    assert main(["configs/sweeps/table7.yaml", "--gpus", "2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "agent: CUDA_VISIBLE_DEVICES=0 wandb agent <entity>/attnpose-2d/<sweep-id>" in out
    assert "agent: CUDA_VISIBLE_DEVICES=1 wandb agent" in out
    assert "first run: /usr/bin/env python -m pose2d fit --config" in out
    assert main(["configs/sweeps/table8.yaml", "--gpus", "2", "--ddp", "2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("agent: ") == 1 and "CUDA_VISIBLE_DEVICES=0,1" in out
    assert out.rstrip().endswith("--trainer.devices=2 --trainer.strategy=ddp")


def test_sweep_without_program_is_refused(tmp_path, capsys) -> None:
    from callbacks.sweep import main

    sweep = _load(ROOT / "configs/sweeps/table9.yaml")
    del sweep["program"]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sweep))
    assert main([str(path), "--dry-run"]) == 2
    assert "no 'program'" in capsys.readouterr().err
