"""Print the paper's tables from a run's ``metrics.json`` (written by the CLI after test).

    python -m pose3d.report runs/pose3d/eval/metrics.json [--stage test]
    python -m pose3d.report runs/pose3d/<run>/predictions_3d.npz   # from pose3d predict

Human3.6M → Table II layout (P1, P2, MPJVE per action + action-wise Avg.); MPI-INF-3DHP →
Table IV row (PCK, AUC, MPJPE pooled over all frames). Uses ``pose3d.tables``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from datamodules.skeleton import H36M_ACTIONS
from pose3d.tables import format_3dhp_row, format_h36m_table


def tables_from_metrics(metrics: dict[str, float], stage: str = "test") -> str:
    """Markdown for one stage's flat ``<stage>/<metric>[/<group>]`` keys."""
    pre = f"{stage}/"
    if f"{pre}pck" in metrics:
        row = format_3dhp_row({k: metrics[pre + k] for k in ("pck", "auc", "mpjpe")})
        scored = metrics.get(pre + "frames")
        return row if scored is None else f"{row}\n\nScored frames: {int(scored)}"
    per_action: dict[str, dict[str, float]] = {}
    for key, val in metrics.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == stage and parts[2] in H36M_ACTIONS and val is not None:
            per_action.setdefault(parts[2], {})[parts[1]] = float(val)
    avg = {k: metrics.get(pre + k) for k in ("mpjpe", "p_mpjpe", "mpjve", "frames")}
    avg = {k: float("nan") if v is None else float(v) for k, v in avg.items()}
    frames = metrics.get(pre + "mpjpe_framewise")
    table = format_h36m_table(per_action, avg)
    if frames is not None:
        table += f"\n\nFrame-wise MPJPE: {float(frames):.1f} mm (Avg. above is action-wise)"
    return table


def metrics_from_predictions(path: str | Path) -> dict[str, float]:
    """Flat ``test/...`` metrics recomputed from a ``predictions_3d.npz`` of ``pose3d predict``
    (``callbacks.prediction_writer.PoseSequenceWriter``, written with its targets) by the same
    metric classes as ``pose3d test``."""
    import numpy as np
    import torch

    from datamodules.skeleton import MPI_INF_3DHP
    from pose3d.metrics import H36MMetrics, MPI3DHPMetrics, flatten_metrics

    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        seqs = meta["sequences"]
        if any(f"target/{r['key']}" not in f.files for r in seqs):
            raise SystemExit(f"{path} holds no targets (written with with_target=false)")
        pred = [f[r["key"]] for r in seqs]
        target = [f[f"target/{r['key']}"] for r in seqs]
        frame = [f[f"frames/{r['key']}"] for r in seqs]
    is_3dhp = meta["skeleton"] == MPI_INF_3DHP.name
    groups = sorted({r["group"] for r in seqs}) if is_3dhp else list(H36M_ACTIONS)
    metric = (MPI3DHPMetrics if is_3dhp else H36MMetrics)(
        groups, root=int(meta["root"]), zero_root=bool(meta.get("zero_root", True))
    )
    sizes = [len(p) for p in pred]
    metric.update(
        torch.from_numpy(np.concatenate(pred)),
        torch.from_numpy(np.concatenate(target)),
        torch.tensor(np.repeat([groups.index(r["group"]) for r in seqs], sizes)),
        torch.tensor(np.repeat(np.arange(len(seqs)), sizes)),
        torch.from_numpy(np.concatenate(frame)),
        torch.arange(sum(sizes)),
    )
    return flatten_metrics(metric.compute(), prefix="test/")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m pose3d.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("metrics_json", type=Path, help="metrics.json, or predictions_3d.npz")
    p.add_argument("--stage", default="test", choices=["test", "val"])
    a = p.parse_args(argv)
    if a.metrics_json.suffix == ".npz" and a.metrics_json.is_file():  # pose3d predict output
        print(tables_from_metrics(metrics_from_predictions(a.metrics_json), "test"))
        return
    if not a.metrics_json.is_file():
        raise SystemExit(f"no metrics file at {a.metrics_json} (run `python -m pose3d test` first)")
    data = json.loads(a.metrics_json.read_text())
    section = data.get("test" if a.stage == "test" else "validate") or {}
    if not section:
        raise SystemExit(f"{a.metrics_json} has no {a.stage} metrics")
    print(tables_from_metrics(section, a.stage))


if __name__ == "__main__":
    main()
