"""The trivial baseline: predict the training set's mean 3D pose for every test frame.

    python -m pose3d.mean_pose --root data/synthetic_h36m --synthetic --keypoints synthetic_det \
        --downsample 4

Prints the action-wise / frame-wise MPJPE (mm) of that constant prediction on the test subjects,
the floor a trained lifter must clearly beat. Uses the same data module, root zeroing and metric
as training (T=1 windows: only centre frames matter).
"""

from __future__ import annotations

import argparse

import torch

from datamodules.h36m import H36MDataModule
from pose3d.metrics import H36MMetrics


@torch.no_grad()
def mean_pose_baseline(dm: H36MDataModule) -> dict:
    """``compute()`` of :class:`H36MMetrics` for the constant training-mean pose."""
    dm.prepare_data()
    dm.setup("fit")
    total, count = None, 0
    for batch in dm.train_dataloader():
        y = batch["target_3d"][:, 0].double()  # (B, J, 3)
        total = y.sum(0) if total is None else total + y.sum(0)
        count += y.shape[0]
    mean = (total / count).float()
    metric = H36MMetrics(dm.group_names, root=dm.skeleton.root)
    for batch in dm.test_dataloader():
        b = batch["target_3d"].shape[0]
        metric.update(mean.expand(b, -1, -1), batch["target_3d"][:, 0], batch["action"],
                      batch["seq"], batch["frame"], batch["index"])  # fmt: skip
    return metric.compute()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m pose3d.mean_pose", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--root", default=None)
    p.add_argument("--keypoints", default=None)
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--downsample", type=int, default=1, help="every Nth frame (as the data module)")
    a = p.parse_args(argv)
    dm = H36MDataModule(root=a.root, keypoints=a.keypoints, synthetic=a.synthetic, frames=1,
                        downsample=a.downsample,
                        batch_size=8192, num_workers=0, flip_augment=False)  # fmt: skip
    r = mean_pose_baseline(dm)
    print(f"mean-pose baseline: MPJPE action-wise {float(r['mpjpe']):.1f} mm, frame-wise "
          f"{float(r['mpjpe_framewise']):.1f} mm, P-MPJPE {float(r['p_mpjpe']):.1f} mm "
          f"over {r['frames']} test frames")  # fmt: skip


if __name__ == "__main__":
    main()
