"""``make demo``: the whole system on a machine with no datasets and no downloaded weights.

1. trains a small 2D detector and a small lifter briefly through their CLIs and the synthetic
   configs (the synthetic COCO-format and Human3.6M-format sets are generated on first use), or
   reuses the checkpoints of an earlier demo under ``--out`` (``--retrain`` forces training);
2. renders a short synthetic clip (a test subject, one camera) with ``datamodules.render_h36m``;
3. runs ``python -m pose3d.infer`` on it and prints where the pictures and arrays are;
4. renders a two-person clip (``datamodules.render_people``, the second person enters a third
   of the way in) and runs it with ``--people all`` (``--people-frames 0`` skips this).

    python -m pose3d.demo [--out runs/demo] [--epochs-2d 4] [--epochs-3d 2] [--batches-3d 150]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from datamodules.cameras import H36M_CAMERA_IDS


def _train(package: str, config: str, run_dir: Path, epochs: int, extra: list[str]) -> Path:
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    cmd = [
        sys.executable, "-m", package, "fit", "--config", config,
        f"--trainer.max_epochs={epochs}", f"--trainer.check_val_every_n_epoch={epochs}",
        f"--run.dir={run_dir}", "--run.restart=true", *extra,  # --retrain: old run to .old<N>
    ]  # fmt: skip
    print("+", " ".join(cmd), flush=True)
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "disabled")}
    subprocess.run(cmd, check=True, env=env)
    if not ckpt.is_file():
        raise FileNotFoundError(f"{package} training finished without {ckpt}")
    return ckpt


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(prog="python -m pose3d.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--epochs-2d", type=int, default=4)
    p.add_argument("--epochs-3d", type=int, default=2)
    p.add_argument("--frames", type=int, default=100, help="length of the rendered clip")
    p.add_argument("--batches-3d", type=int, default=150, help="train batches per 3D epoch")
    p.add_argument("--retrain", action="store_true", help="train even if checkpoints exist")
    p.add_argument("--people-frames", type=int, default=40,
                   help="two-person clip length for --people all (0: skip)")  # fmt: skip
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    out = Path(a.out)
    t0 = time.perf_counter()
    ckpts = {}
    limit_3d = [f"--trainer.limit_train_batches={a.batches_3d}"]
    for key, package, config, epochs, extra in (
        ("2d", "pose2d", "configs/pose2d/synthetic.yaml", a.epochs_2d, []),
        ("3d", "pose3d", "configs/pose3d/synthetic.yaml", a.epochs_3d, limit_3d),
    ):
        last = out / key / "checkpoints" / "last.ckpt"
        if last.is_file() and not a.retrain:
            print(f"reusing {last} (--retrain to train again)")
            ckpts[key] = last
        else:
            ckpts[key] = _train(package, config, out / key, epochs, extra)
    t_train = time.perf_counter() - t0

    from datamodules.render_h36m import render_h36m
    from datamodules.synthetic_h36m import generate_synthetic_h36m

    clip_root = out / "clip"
    generate_synthetic_h36m(
        clip_root / "motion", seed=123, frames=a.frames, subjects=("S9",),
        actions=("Greeting",), subactions=1,
    )  # fmt: skip
    render_h36m(clip_root / "motion", clip_root / "render", scale=0.32)
    stem = f"Greeting.{H36M_CAMERA_IDS[1]}"
    video = clip_root / "render" / "S9" / "Videos" / f"{stem}.mp4"
    boxes = clip_root / "render" / "S9" / "Boxes" / f"{stem}.json"

    from pose3d.infer import main as infer

    result_dir = out / "result"
    t1 = time.perf_counter()
    res = infer([
        "--input", str(video), "--detector", str(ckpts["2d"]), "--lifter", str(ckpts["3d"]),
        "--out", str(result_dir), "--boxes", f"coco_json:{boxes}", "--device", a.device,
        "--png-every", "10",
    ])  # fmt: skip
    t_infer = time.perf_counter() - t1
    n, tm = res.timings["frames"], res.timings
    people_png = "-"
    if a.people_frames > 0:  # every person: a rendered two-person clip, B entering mid-clip
        from datamodules.render_people import render_people_clip

        people = render_people_clip(clip_root / "people", frames=a.people_frames,
                                    enter=(0, a.people_frames // 3))  # fmt: skip
        res_people = infer([
            "--input", str(people / "clip.mp4"), "--detector", str(ckpts["2d"]),
            "--lifter", str(ckpts["3d"]), "--out", str(out / "result_people"), "--people", "all",
            "--boxes", f"coco_json:{people / 'boxes.json'}", "--device", a.device,
            "--png-every", "10",
        ])  # fmt: skip
        pngs = res_people.files.get("pngs") or []
        people_png = pngs[-1] if pngs else "-"
    first_png = res.files["pngs"][0] if res.files.get("pngs") else "-"
    print(
        f"\ndemo done in {time.perf_counter() - t0:.0f} s (training/reuse {t_train:.0f} s, "
        f"inference + pictures {t_infer:.1f} s)\n"
        f"  end-to-end 2D+3D: {res.timings['fps_end_to_end']:.1f} frames/s on {a.device} "
        f"({n} frames, 2D {tm['seconds_2d']:.2f} s, 3D {tm['seconds_3d']:.2f} s)\n"
        f"  pictures: {res.timings.get('seconds_pictures', 0):.1f} s\n"
        f"  arrays:   {res.files['npz']} and {res.files['json']}\n"
        f"  pictures: {result_dir / 'frames'}/ (e.g. {first_png})\n"
        f"  video:    {res.files.get('video')}\n"
        f"  every person (--people all, two-person clip): {out / 'result_people'}/ "
        f"(e.g. {people_png})"
    )
    return result_dir


if __name__ == "__main__":
    main()
