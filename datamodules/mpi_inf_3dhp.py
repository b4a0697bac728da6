"""MPI-INF-3DHP in the public P-STMO npz format: prepare step, cache, LightningDataModule.

Expected files (``root`` = ``data/mpi_inf_3dhp`` by default)::

    data_train_3dhp.npz   data: "S{1-8} Seq{1,2}" -> [{camera: {"data_2d": (F, 17, 2) px,
                                                               "data_3d": (F, 17, 3) mm}}, fps]
    data_test_3dhp.npz    data: "TS1".."TS6" -> {"data_2d", "data_3d", "valid" (F,)}

Joints stay in the 3DHP order (``skeleton.MPI_INF_3DHP``, root 14). ``prepare`` (the only reader of
the pickled files) writes ``<root>/cache/3dhp/``: 3D in metres, root-relative with the
root zeroed; 2D normalised with 2048×2048 (train, TS1–TS4) or 1920×1080 (TS5, TS6)::

    python -m datamodules.mpi_inf_3dhp prepare --root data/mpi_inf_3dhp

Test windows are centred only on valid frames, so invalid frames are never scored.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from pytorch_lightning.utilities import rank_zero_warn

from callbacks.user_error import BadInputError, UserError, exit_code
from datamodules.cameras import normalize_screen_coordinates
from datamodules.lifting_datamodule import LiftingDataModule
from datamodules.sequence_cache import Sequence as CacheSequence
from datamodules.sequence_cache import (
    drop_nonfinite,
    load_pickled_npz,
    read_cache,
    root_relative,
    write_cache,
)
from datamodules.skeleton import MPI_INF_3DHP
from datamodules.windows import PoseWindowDataset

FILE_TRAIN = "data_train_3dhp.npz"
FILE_TEST = "data_test_3dhp.npz"
TEST_SEQUENCES = ("TS1", "TS2", "TS3", "TS4", "TS5", "TS6")
TRAIN_SUBJECTS = ("S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8")
TEST_RESOLUTION = {"TS5": (1920, 1080), "TS6": (1920, 1080)}  # the outdoor sequences
DEFAULT_RESOLUTION = (2048, 2048)


def cache_folder(root: str | Path) -> Path:
    return Path(root) / "cache" / "3dhp"


def missing_dataset_message(root: str | Path) -> str:
    root = Path(root)
    return (
        f"MPI-INF-3DHP data not found in {root.resolve()}/.\n"
        f"Expected {root / FILE_TRAIN} and {root / FILE_TEST} (the P-STMO npz files, linked from "
        "the P-STMO README; or written from the official dataset by P-STMO's "
        "common/data_to_npz_3dhp.py and data_to_npz_3dhp_test.py), then a prepared cache "
        f"{cache_folder(root)}/. Run once:\n"
        f"  python -m datamodules.mpi_inf_3dhp prepare --root {root}\n"
        "  (or make prepare-3d DATA=3dhp).\n"
        "To try the pipeline without a dataset use the synthetic Human3.6M stand-in: "
        "make prepare-3d DATA=synthetic."
    )


def _sequence(name: str, cam: str, d2: np.ndarray, d3: np.ndarray, path: Path) -> tuple:
    """Checked ``(F, 17, 2)`` px and ``(F, 17, 3)`` mm arrays (extra 2D channels are dropped)."""
    d2, d3 = np.asarray(d2, np.float64), np.asarray(d3, np.float64)
    if d2.ndim != 3 or d2.shape[1] != 17 or d2.shape[2] < 2 or d3.shape != (len(d2), 17, 3):
        raise BadInputError(
            f"{path}: {name} camera {cam} has data_2d {d2.shape} and data_3d "
            f"{d3.shape}; expected (F, 17, 2) and (F, 17, 3)"
        )
    return d2[..., :2], d3


def _nonfinite(record: dict, d2: np.ndarray, d3: np.ndarray, valid, path: Path) -> str | None:
    """One phrase naming the first NaN/Inf of a sequence (2D: every frame, as window context;
    3D: the frames that are scored), or None."""
    d3_used = d3 if valid is None else d3[valid]
    for what, x in (("2D", d2), ("3D", d3_used)):
        finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if not finite.all():
            frames = np.flatnonzero(~finite)
            which = "valid frame" if what == "3D" and valid is not None else "frame"
            return (
                f"{path}: {record['name']} camera {record['camera']}: {len(frames)} frames with "
                f"NaN/Inf {what} values (first: {which} {frames[0]})"
            )
    return None


def prepare_3dhp(root: str | Path, nonfinite: Literal["error", "drop"] = "error") -> Path:
    """Read the two P-STMO npz files once and write the pickle-free cache; returns its folder.
    ``nonfinite``: a sequence with NaN/Inf is an ``error`` (one line naming it) or is left
    out (``drop``, with a count)."""
    root = Path(root)
    ptrain, ptest = root / FILE_TRAIN, root / FILE_TEST
    present = [p for p in (ptrain, ptest) if p.is_file()]
    if not present:  # either file alone is a usable partial download (train or evaluate)
        raise FileNotFoundError(f"missing {ptrain} and {ptest}\n\n" + missing_dataset_message(root))
    print(
        f"prepare: unpickling {' and '.join(map(str, present))} (allow_pickle=True: the "
        "P-STMO format stores pickled dicts; only prepare files you trust)"
    )
    train = load_pickled_npz(ptrain, "data") if ptrain.is_file() else {}
    test = load_pickled_npz(ptest, "data") if ptest.is_file() else {}
    unknown = sorted(set(map(str, test)) - set(TEST_SEQUENCES))
    if unknown:
        raise BadInputError(f"{ptest}: unknown test sequence {unknown[0]!r}; expected TS1..TS6")
    subjects = sorted({str(n).split(" ")[0] for n in train}, key=lambda s: int(s.lstrip("S")))
    print("prepare: " + present_summary(subjects, [n for n in TEST_SEQUENCES if n in test]))

    items = []  # (record, data_2d, data_3d, valid)
    for name in sorted(train):
        entry = train[name]
        cams, fps = (entry[0], entry[1]) if isinstance(entry, list | tuple) else (entry, None)
        for cam in sorted(cams, key=str):
            d2, d3 = _sequence(name, str(cam), cams[cam]["data_2d"], cams[cam]["data_3d"], ptrain)
            w, h = DEFAULT_RESOLUTION
            record = {
                "split": "train",
                "name": name,
                "subject": name.split(" ")[0],
                "camera": str(cam),
                "group": name,
                "res_w": w,
                "res_h": h,
                "fps": None if fps is None else float(np.asarray(fps).reshape(-1)[0]),
            }
            items.append((record, d2, d3, None))
    for name in (n for n in TEST_SEQUENCES if n in test):
        seq = test[name]
        d2, d3 = _sequence(name, "0", seq["data_2d"], seq["data_3d"], ptest)
        valid = np.asarray(seq["valid"]).reshape(-1).astype(bool)
        if len(valid) != len(d2):
            raise BadInputError(
                f"{ptest}: {name} has {len(valid)} valid flags for {len(d2)} frames"
            )
        w, h = TEST_RESOLUTION.get(name, DEFAULT_RESOLUTION)
        record = {
            "split": "test",
            "name": name,
            "subject": name,
            "camera": "0",
            "group": name,
            "res_w": w,
            "res_h": h,
            "fps": None,
        }
        items.append((record, d2, d3, valid))
    bad = []
    for i, it in enumerate(items):
        found = _nonfinite(*it, ptrain if it[0]["split"] == "train" else ptest)
        if found:
            bad.append((i, found))
    items = drop_nonfinite(items, bad, nonfinite)
    if not items:
        raise BadInputError(
            f"{' + '.join(map(str, present))}: no sequence to prepare (every one dropped or the "
            "files are empty); expected S1..S8 Seq1/2 (train) and TS1..TS6 (test)"
        )

    def sequences() -> Iterator[CacheSequence]:
        for record, d2, d3, valid in items:
            w, h = record["res_w"], record["res_h"]
            yield CacheSequence(
                pos2d=normalize_screen_coordinates(d2, w, h).astype(np.float32),
                pos3d=root_relative(d3 / 1000.0, MPI_INF_3DHP.root).astype(np.float32),
                valid=valid,
                record=record,
            )

    meta = {
        "dataset": "mpi_inf_3dhp",
        "source": "gt",
        "skeleton": MPI_INF_3DHP.name,
        "files": [p.name for p in present],
    }
    lengths = [len(it[1]) for it in items]
    return write_cache(
        cache_folder(root), sequences, lengths, meta, MPI_INF_3DHP.num_joints, with_valid=True
    )


def present_summary(train_subjects: list[str], test_sequences: list[str]) -> str:
    """One line: which of S1–S8 and TS1–TS6 are present (and which are not)."""

    def part(what: str, have: list[str], full: tuple[str, ...]) -> str:
        absent = [n for n in full if n not in have]
        return f"{what} {' '.join(have) or 'none'}" + (
            f" (absent: {' '.join(absent)})" if absent else ""
        )

    return (
        part("train subjects", train_subjects, TRAIN_SUBJECTS)
        + "; "
        + part("test sequences", test_sequences, TEST_SEQUENCES)
    )


class SubjectsMissingError(UserError, ValueError):
    """The cache lacks the split a stage needs (one line, exit status 2)."""


class MPIINF3DHPDataModule(LiftingDataModule):
    """MPI-INF-3DHP windows (3DHP joint order, ground-truth 2D input as in the literature).

    Train: every camera of S1–S8 Seq1/2; val and test: TS1–TS6 at valid frames only, one window
    per valid frame. ``group_names`` = TS1..TS6 (the ``action`` of val/test batches); train
    batches carry an index into ``train_group_names`` ("S1 Seq1", ...).

    Args:
        root: folder with data_train_3dhp.npz and data_test_3dhp.npz.
        frames: window length T (odd, 1..243); also sizes the model (linked to model.frames).
        batch_size: training windows per GPU (the global batch is batch_size × GPUs).
        eval_batch_size: validation/test windows per GPU (None: batch_size).
        num_workers: DataLoader worker processes.
        downsample: use every downsample-th frame of each sequence (windows on that grid).
        stride: a training window centred on every stride-th (downsampled) frame.
        flip_augment: horizontal-flip augmentation of training windows (mirrored joints).
        flip_prob: probability of flipping a training window (flip_mode "random" only).
        flip_mode: "double" (default, official VideoPose3D/PoseFormer generator): every
            training window twice per epoch, as is and mirrored, shuffled together (an epoch
            is 2× the windows); "random": each window mirrored with flip_prob when drawn.
        pin_memory: pinned host memory (None: on when CUDA is available).
    """

    skeleton = MPI_INF_3DHP
    dataset_fps = None  # the sequences are 25 or 50 fps
    group_names = list(TEST_SEQUENCES)

    def __init__(
        self,
        root: str = "data/mpi_inf_3dhp",
        frames: int = 81,
        batch_size: int = 1024,
        eval_batch_size: int | None = None,
        num_workers: int = 2,
        downsample: int = 1,
        stride: int = 1,
        flip_augment: bool = True,
        flip_prob: float = 0.5,
        flip_mode: Literal["double", "random"] = "double",
        pin_memory: bool | None = None,
    ) -> None:
        super().__init__(
            frames, batch_size, eval_batch_size, num_workers, pin_memory, downsample, stride,
            flip_prob, flip_mode if flip_augment else "none",
        )  # fmt: skip
        self.root = Path(root)
        self.train_group_names: list[str] = []

    @property
    def cache_folder(self) -> Path:
        return cache_folder(self.root)

    def _raw_present(self) -> bool:
        return (self.root / FILE_TRAIN).is_file() or (self.root / FILE_TEST).is_file()

    def prepare_data(self) -> None:
        """Nothing: the pickled npz files are read only by the explicit prepare command."""

    def _prepare_command(self) -> str:
        return f"python -m datamodules.mpi_inf_3dhp prepare --root {self.root}"

    def _missing_message(self) -> str:
        return missing_dataset_message(self.root)

    def setup(self, stage: str | None = None) -> None:
        cache = self._read_cache()
        split = np.array([r["split"] for r in cache.sequences])
        names = [r["group"] for r in cache.sequences]
        self.train_group_names = sorted(
            {n for n, s in zip(names, split, strict=True) if s == "train"}
        )
        # a partial download: score (and name) only the test sequences that are there
        self.group_names = [n for n in TEST_SEQUENCES if n in set(names)]
        fit = stage in (None, "fit")
        subjects = sorted({n.split(" ")[0] for n in self.train_group_names})
        if (fit and not self.train_group_names) or (not fit and not self.group_names):
            raise SubjectsMissingError(
                f"{self.cache_folder}: {present_summary(subjects, self.group_names)}; "
                + (
                    "training needs data_train_3dhp.npz"
                    if fit
                    else "evaluation needs data_test_3dhp.npz"
                )  # fmt: skip
                + f", then {self._prepare_command()}"
            )
        if len(self.group_names) < len(TEST_SEQUENCES) or (fit and len(subjects) < 8):
            rank_zero_warn(
                f"MPI-INF-3DHP partial data: {present_summary(subjects, self.group_names)}; "
                "metrics cover the present test sequences only"
            )
        lookup = {n: i for i, n in enumerate(self.train_group_names)}
        lookup.update({n: i for i, n in enumerate(self.group_names)})
        group = np.array([lookup[n] for n in names])

        def dataset(which: str, train: bool) -> PoseWindowDataset:
            valid = None if train else cache.valid
            seqs = np.flatnonzero(split == which)
            return self._windows(cache, seqs, group, train, valid, cache.offsets)

        if fit:
            self.train_set = dataset("train", train=True)
        self.test_set = dataset("test", train=False) if self.group_names else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m datamodules.mpi_inf_3dhp",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="convert the P-STMO npz files into the cache")
    prep.add_argument("--root", default="data/mpi_inf_3dhp")
    prep.add_argument(
        "--nonfinite",
        choices=("error", "drop"),
        default="error",
        help="sequences with NaN/Inf: stop naming the first (default) or leave them out",
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    folder = prepare_3dhp(args.root, args.nonfinite)
    cache = read_cache(folder)
    print(
        f"wrote {folder}: {cache.num_sequences} sequences, {len(cache.pos2d)} frames "
        f"in {time.perf_counter() - t0:.1f} s"
    )


if __name__ == "__main__":
    sys.exit(exit_code(main))
