"""Create a W&B sweep from ``configs/sweeps/<table>.yaml`` and run its agents on this machine.

    python -m callbacks.sweep configs/sweeps/table8.yaml [--gpus 2|0,1] [--ddp N]
        [--project P] [--entity E] [--count K] [--dry-run]

``--gpus N`` (``make sweep GPUS=N``) starts one ``wandb agent`` per GPU, each pinned with
``CUDA_VISIBLE_DEVICES=<i>``; the sweep's command already carries ``--trainer.devices=1``, so a
run never turns into a DDP run over every visible GPU (with twice the global batch). A DDP sweep
is explicit: ``--ddp N`` adds the parameters ``trainer.devices=N`` and ``trainer.strategy=ddp``
(they come after the command's own flags, so they win) and starts ONE agent that sees N GPUs.
Without ``--gpus`` one agent runs, unpinned. The agents run with this interpreter's folder first
on ``PATH``, because W&B's ``${interpreter}`` is a plain ``python``. ``--dry-run`` prints the
sweep config, the agent command lines and the command of the first grid point, and contacts
nobody.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from callbacks.ablate import grid_points, load_sweep, parse_gpus

PROJECTS = {"pose2d": "attnpose-2d", "pose3d": "attnpose-3d"}


def with_ddp(sweep: dict, devices: int) -> dict:
    """A copy of ``sweep`` whose runs use ``devices`` GPUs with DDP (``trainer.*`` parameters)."""
    out = copy.deepcopy(sweep)
    out["parameters"]["trainer.devices"] = {"value": int(devices)}
    out["parameters"]["trainer.strategy"] = {"value": "ddp"}
    return out


def agent_command(point: dict, sweep: dict) -> list[str]:
    """The command line ``wandb agent`` runs for one grid ``point``, expanded by W&B's own code
    (``wandb.sdk.launch.sweeps.utils``, as ``wandb_agent.py`` does: ``${env}`` → /usr/bin/env,
    ``${interpreter}`` → python, ``${args}`` → ``--key=value``)."""
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    command = sweep_utils.create_sweep_command(list(sweep["command"]))
    sweep_vars = sweep_utils.create_sweep_command_args(
        {"args": {k: {"value": v} for k, v in point.items()}}
    )
    sweep_vars.update(interpreter=["python"], program=[sweep["program"]], env=["/usr/bin/env"])
    out: list[str] = []
    for item in map(str, command):
        if item.startswith("${") and item.endswith("}"):
            out += sweep_vars.get(item[2:-1]) or []
        else:
            out.append(item)
    return out


def agent_plan(gpus: Sequence[int] = (), ddp: int = 0) -> list[dict[str, str]]:
    """Environment overrides of each agent: one per GPU (pinned), one for a DDP sweep (its N
    GPUs), or one unpinned agent without GPUs."""
    if ddp:
        visible = list(gpus)[:ddp] if gpus else list(range(ddp))
        return [{"CUDA_VISIBLE_DEVICES": ",".join(map(str, visible))}]
    if not gpus:
        return [{}]
    return [{"CUDA_VISIBLE_DEVICES": str(g)} for g in gpus]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m callbacks.sweep", description=__doc__.split("\n", 1)[0]
    )
    p.add_argument("sweep", help="configs/sweeps/<name>.yaml")
    p.add_argument("--gpus", default="0", help="a count (2) or a list (0,1); 0 = one agent")
    p.add_argument("--ddp", type=int, default=0, help="N > 1: one agent, each run DDP on N GPUs")
    p.add_argument("--project", default=None, help="W&B project (default by the trainer)")
    p.add_argument("--entity", default=None, help="W&B entity (default: yours)")
    p.add_argument("--count", type=int, default=None, help="runs per agent (default: until done)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, contact nobody")
    a = p.parse_args(argv)

    sweep = load_sweep(a.sweep)
    if "program" not in sweep:
        print(f"error: {a.sweep}: no 'program' (W&B requires it)", file=sys.stderr)
        return 2
    if a.ddp > 1:
        sweep = with_ddp(sweep, a.ddp)
    project = a.project or PROJECTS.get(sweep["program"], "attnpose")
    plan = agent_plan(parse_gpus(a.gpus), a.ddp if a.ddp > 1 else 0)
    bin_dir = str(Path(sys.executable).parent)
    wandb_exe = str(Path(bin_dir) / "wandb")
    count = ["--count", str(a.count)] if a.count else []

    if a.dry_run:
        print(yaml.safe_dump(sweep, sort_keys=False))
        for env in plan:
            pinned = " ".join(f"{k}={v}" for k, v in env.items())
            words = [pinned, "wandb agent", *count, f"<entity>/{project}/<sweep-id>"]
            print("agent:", " ".join(w for w in words if w))
        print("first run:", " ".join(agent_command(grid_points(sweep["parameters"])[0], sweep)))
        return 0

    import wandb

    sweep_id = wandb.sweep(sweep, entity=a.entity, project=project)
    path = "/".join(x for x in (a.entity, project, sweep_id) if x)
    procs = []
    for env in plan:
        child = {**os.environ, **env, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
        print(f"[sweep] {' '.join(f'{k}={v}' for k, v in env.items())} wandb agent {path}")
        procs.append(subprocess.Popen([wandb_exe, "agent", *count, path], env=child))
    codes = [proc.wait() for proc in procs]
    return max(codes, default=0)


if __name__ == "__main__":
    sys.exit(main())
