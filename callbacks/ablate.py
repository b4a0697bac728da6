"""Run a W&B sweep file's grid locally, without a W&B server, and tabulate the results.

    python -m callbacks.ablate configs/sweeps/table8.yaml [--gpus 2] [--out runs/ablate]
        [--values model.lr=1e-3,5e-4] [--skip-done] [--in-process] -- <extra CLI args>

Each grid point runs the sweep's own ``command`` (``${interpreter}`` → this Python, ``${args}``
→ ``--key=value`` per parameter, as the W&B agent expands it) in its own folder
``<out>/<sweep>/<NN>-<point>/`` (``--run.dir``), so configs, checkpoints and ``metrics.json``
never collide. Extra args go *before* the sweep's ``${args}``, so a tiny-run config
(``--config configs/pose3d/synthetic.yaml --trainer.max_epochs=1``) cannot override a swept
value. ``--gpus N`` runs N points at once, one GPU each (``CUDA_VISIBLE_DEVICES``); otherwise
points run one after another. The table (``results.md``, ``results.json``) has a row per point,
the varied parameters as columns, then the best value of the sweep's ``metric.name`` and the
parameter count in millions.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml


def load_sweep(path: str | os.PathLike) -> dict:
    """Read a W&B sweep YAML; checks the parts this runner needs."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep file {path} not found (see configs/sweeps/)")
    with open(path) as f:
        sweep = yaml.safe_load(f)
    for key in ("parameters", "command", "metric"):
        if key not in sweep:
            raise ValueError(f"sweep file {path}: missing '{key}'")
    if sweep.get("method", "grid") != "grid":
        raise ValueError(f"sweep file {path}: only method: grid can be run locally")
    return sweep


def grid_points(parameters: dict) -> list[dict]:
    """All combinations, first parameter varying slowest (W&B grid order). Fixed ``value``
    parameters are included in every point."""
    keys, choices = [], []
    for key, spec in parameters.items():
        keys.append(key)
        choices.append(list(spec["values"]) if "values" in spec else [spec["value"]])
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*choices)]


def cli_value(value) -> str:
    """A value as the W&B agent writes it into ``--key=value`` (YAML-ish for lists/bools)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def expand_command(
    command: Sequence[str], point: dict, extra: Sequence[str] = (), program: str = ""
) -> list[str]:
    """The sweep ``command`` with the agent's macros filled in; ``extra`` goes before
    ``${args}`` (so swept values win)."""
    out: list[str] = []
    for item in command:
        if item == "${env}":
            continue  # "/usr/bin/env": only needed by the agent's shell-less exec
        if item == "${interpreter}":
            out.append(sys.executable)
        elif item == "${program}":
            out.append(program)
        elif item == "${args}":
            out += list(extra)
            out += [f"--{k}={cli_value(v)}" for k, v in point.items()]
        else:
            out.append(str(item))
    return out


def point_name(index: int, point: dict, varied: Sequence[str]) -> str:
    """``03-sam_position=after_msa-tam_position=before_msa`` (safe as a folder name)."""
    parts = [f"{k.split('.')[-1]}={cli_value(point[k])}" for k in varied]
    name = f"{index:02d}-" + "-".join(parts) if parts else f"{index:02d}"
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", name)[:120]


def read_result(run_dir: Path, metric: str) -> dict:
    """Best ``metric`` (else the last validated value) and the parameter count of one run."""
    try:
        data = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return {"metric": None, "params": None}
    best = data.get("best", {}).get(metric)
    if best is None:
        best = data.get("validate", {}).get(metric)
    return {"metric": best, "params": data.get("params")}


def results_table(rows: list[dict], varied: Sequence[str], metric: str) -> str:
    """Markdown in the paper's layout: varied params, the metric, #params (M)."""
    short = [k.split(".")[-1] for k in varied]
    lines = ["| " + " | ".join([*short, metric, "#Param (M)"]) + " |"]
    lines.append("|" + "---|" * (len(short) + 2))
    for row in rows:
        m, p = row["metric"], row["params"]
        if row["returncode"] or m is None:
            mtxt = "failed" if row["returncode"] else "-"
        else:  # AP-like metrics in [0, 1] need more digits than millimetres
            mtxt = f"{m:.4f}" if abs(m) < 1 else f"{m:.2f}"
        ptxt = "-" if p is None else f"{p / 1e6:.2f}"
        cells = [cli_value(row["point"][k]) for k in varied] + [mtxt, ptxt]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _run_in_process(cmd: list[str]) -> int:
    """Run ``python -m <pkg> ...`` through ``<pkg>.__main__.main(args)`` in this process (tests
    and quick CPU checks: saves the ~5 s import cost per point)."""
    import importlib

    if len(cmd) < 3 or cmd[1] != "-m":
        raise ValueError(f"--in-process needs a '${{interpreter}} -m <package>' command: {cmd}")
    main = importlib.import_module(f"{cmd[2]}.__main__").main
    try:
        main(args=cmd[3:])
    except SystemExit as e:  # argument errors
        return int(e.code or 0)
    except Exception as e:  # noqa: BLE001 - a failed point is reported, the grid goes on
        print(f"[ablate] point failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        # each point is its own W&B run: WandbLogger would otherwise reuse the open one
        if "wandb" in sys.modules:
            sys.modules["wandb"].finish()
    return 0


def run_sweep(
    sweep_file: str | os.PathLike,
    extra: Sequence[str] = (),
    out: str | os.PathLike = "runs/ablate",
    gpus: Sequence[int] = (),
    values: dict[str, list] | None = None,
    skip_done: bool = False,
    in_process: bool = False,
) -> tuple[list[dict], str]:
    """Run every grid point; return (rows, markdown table). See the module docstring."""
    sweep = load_sweep(sweep_file)
    params = dict(sweep["parameters"])
    for key, vals in (values or {}).items():
        if key not in params:
            raise KeyError(f"--values {key}: not a parameter of {sweep_file} ({list(params)})")
        params[key] = {"values": list(vals)}
    points = grid_points(params)
    varied = [k for k, spec in params.items() if len(spec.get("values", [None])) > 1]
    metric = sweep["metric"]["name"]
    name = Path(sweep_file).stem
    root = Path(out) / name
    root.mkdir(parents=True, exist_ok=True)

    rows: list[dict] = []
    running: list[tuple[subprocess.Popen, dict, int]] = []
    free = list(gpus)
    env_base = {**os.environ}
    for i, point in enumerate(points):
        run_dir = root / point_name(i, point, varied)
        row = {"point": point, "dir": str(run_dir), "returncode": 0}
        rows.append(row)
        if skip_done and read_result(run_dir, metric)["metric"] is not None:
            print(f"[ablate] {run_dir.name}: done already, skipped")
            continue
        device_args = ["--trainer.devices=1", "--trainer.strategy=auto"] if gpus else []
        cmd = expand_command(
            sweep["command"], point, [*extra, *device_args], sweep.get("program", "")
        )
        # a point run again (not --skip-done) starts afresh; its earlier run moves to .old<N>
        cmd += [f"--run.dir={run_dir}", "--run.restart=true"]
        print(f"[ablate] {run_dir.name}: {' '.join(cmd[1:])}", flush=True)
        if in_process:
            row["returncode"] = _run_in_process(cmd)
            continue
        env = dict(env_base)
        gpu = None
        if gpus:
            while not free:  # wait for a GPU to come back
                free += _reap(running, block=True)
            gpu = free.pop(0)
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        proc = subprocess.Popen(cmd, env=env)
        if gpus:
            running.append((proc, row, gpu))
        else:
            row["returncode"] = proc.wait()
    while running:
        _reap(running, block=True)

    for row in rows:
        row.update(read_result(Path(row["dir"]), metric))
        if row["metric"] is not None and not math.isfinite(row["metric"]):
            row["metric"] = None
    table = results_table(rows, varied, metric)
    (root / "results.md").write_text(f"# {name}: {sweep.get('description', '')}\n\n{table}")
    (root / "results.json").write_text(json.dumps(rows, indent=2))
    return rows, table


def _reap(running: list, block: bool) -> list[int]:
    """Collect finished subprocesses; returns the GPUs they free."""
    freed: list[int] = []
    while not freed:
        for item in list(running):
            proc, row, gpu = item
            if proc.poll() is not None:
                row["returncode"] = proc.returncode
                running.remove(item)
                freed.append(gpu)
        if not block or not running:
            break
        if not freed:
            time.sleep(1.0)
    return freed


def parse_gpus(text: str) -> list[int]:
    """``GPUS=`` → device indices: ``0``/empty none, ``N`` the first N, ``a,b`` those listed."""
    text = (text or "").strip()
    if not text or text == "0":
        return []
    if "," in text:
        return [int(g) for g in text.split(",") if g.strip()]
    return list(range(int(text)))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    p = argparse.ArgumentParser(
        prog="python -m callbacks.ablate", description=__doc__.split("\n")[0]
    )
    p.add_argument("sweep", help="configs/sweeps/<name>.yaml")
    p.add_argument("--out", default="runs/ablate")
    p.add_argument("--gpus", default="0", help="a count (2) or a list (0,1); 0 = sequential")
    p.add_argument(
        "--values",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="replace one parameter's values (e.g. keypoint files that exist here)",
    )
    p.add_argument("--skip-done", action="store_true", help="skip points with a metrics.json")
    p.add_argument("--in-process", action="store_true", help="no subprocess per point")
    a = p.parse_args(argv)
    values = {}
    for item in a.values:
        key, _, vals = item.partition("=")
        values[key] = [yaml.safe_load(v) for v in vals.split(",")]
    rows, table = run_sweep(
        a.sweep, extra, a.out, parse_gpus(a.gpus), values, a.skip_done, a.in_process
    )
    print(table)
    return 1 if any(r["returncode"] or r["metric"] is None for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
