"""Real 2-process gloo runs: metrics gathered across ranks equal the single-process values."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pose2d.coco_metric import COCOKeypointMetric
from pose3d.metrics import H36MMetrics, MPI3DHPMetrics

N = 21
NAMES = ["A", "B", "C"]


def _data() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(N, 17, 3, generator=gen) * 0.3
    pred = target + 0.05 * torch.randn(N, 17, 3, generator=gen)
    seq = torch.arange(N) // 7
    return {"pred": pred, "target": target, "action": seq.clone(), "seq": seq,
            "frame": torch.arange(N) % 7, "index": torch.arange(N)}  # fmt: skip


def _rank_indices(rank: int) -> torch.Tensor:
    # DistributedSampler style: interleaved, the shorter rank padded by repeating sample 0
    idx = torch.arange(N)[rank::2]
    return torch.cat([idx, idx[:1]]) if idx.numel() < (N + 1) // 2 else idx


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        d = _data()
        sel = _rank_indices(rank)
        results = {}
        for cls in (H36MMetrics, MPI3DHPMetrics):
            m = cls(NAMES)
            m.update(*(d[k][sel] for k in ("pred", "target", "action", "seq", "frame", "index")))
            out = m.compute()
            results[cls.__name__] = {k: float(v) for k, v in out.items() if not isinstance(v, dict)}
        # COCO: 5 people in 5 images, rank 1 gets a padded copy of person 1
        kp, ids = _coco_people()
        coco = COCOKeypointMetric(str(Path(out_dir, "gt.json")), use_nms=False)  # de-dup alone
        sel = torch.tensor([0, 2, 4] if rank == 0 else [1, 3, 1])
        coco.update(sel, ids[sel], kp[sel], torch.ones(3), torch.full((3,), 1e4))
        results["coco"] = coco.compute() | {"n_results": len(coco.results)}
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


def _coco_people() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    kp = torch.rand(5, 17, 3, generator=gen) * 200 + 50
    kp[..., 2] = 2.0
    return kp, torch.arange(1, 6)


def _write_coco_gt(path: Path) -> None:
    kp, ids = _coco_people()
    anns = [{"id": int(i), "image_id": int(i), "category_id": 1, "iscrowd": 0,
             "bbox": [50, 50, 200, 200], "area": 30000.0, "num_keypoints": 17,
             "keypoints": k.reshape(-1).tolist()}
            for i, k in zip(ids, kp, strict=True)]  # fmt: skip
    path.write_text(json.dumps({
        "images": [{"id": int(i), "width": 400, "height": 400} for i in ids],
        "annotations": anns,
        "categories": [{"id": 1, "name": "person"}],
    }))  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_two_rank_gloo_matches_single_process(tmp_path: Path) -> None:
    _write_coco_gt(tmp_path / "gt.json")
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    d = _data()
    expected = {}
    for cls in (H36MMetrics, MPI3DHPMetrics):
        m = cls(NAMES)
        m.update(*(d[k] for k in ("pred", "target", "action", "seq", "frame", "index")))
        out = m.compute()
        expected[cls.__name__] = {k: float(v) for k, v in out.items() if not isinstance(v, dict)}
    assert _rank_indices(1).tolist()[-1] == 1  # rank 1 really holds a padded duplicate
    for rank in (0, 1):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        for name, vals in expected.items():
            assert got[name]["frames"] == N
            for key, val in vals.items():
                assert got[name][key] == pytest.approx(val, rel=1e-6), (rank, name, key)
        assert got["coco"]["n_results"] == 5  # the padded copy is dropped, nothing is lost
        assert got["coco"]["AP"] == pytest.approx(1.0) and got["coco"]["AR"] == pytest.approx(1.0)
