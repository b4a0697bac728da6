"""Human3.6M in the VideoPose3D file format: prepare step, cache, LightningDataModule.

Expected files (``root`` = ``data/h36m`` by default)::

    data_3d_h36m.npz               positions_3d: subject -> action -> (F, 32, 3) world metres
    data_2d_h36m_<source>.npz      positions_2d: subject -> action -> 4 × (F', 17, 2) pixels,
                                   metadata (num_joints, keypoints_symmetry[, layout_name]),
                                   optionally confidences: subject -> action -> 4 × (F', 17)

Both hold pickled dicts, so they are only read by ``prepare`` (through
``sequence_cache.load_pickled_npz``), which writes ``<root>/cache/<source>/``::

    python -m datamodules.h36m prepare --root data/h36m --keypoints cpn_ft_h36m_dbb

Per (subject, action, camera): 32 → 17 joints (``H36M32_KEPT``), world → camera, root-relative
with the root zeroed; 2D truncated to the mocap length (shorter is an error) and normalised with
the camera's resolution. S11 "Directions" is skipped (corrupt video, as in VideoPose3D).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pytorch_lightning.utilities import rank_zero_warn

from callbacks.user_error import BadInputError, UserError, exit_code
from datamodules.cameras import h36m_camera, normalize_screen_coordinates, world_to_camera
from datamodules.generated_folder import claim, is_current, owned_by
from datamodules.h36m_files import FILE_3D, file_2d
from datamodules.lifting_datamodule import LiftingDataModule
from datamodules.sequence_cache import Sequence as CacheSequence
from datamodules.sequence_cache import (
    cache_exists,
    drop_nonfinite,
    load_pickled_npz,
    read_cache,
    root_relative,
    write_cache,
)
from datamodules.skeleton import (
    COCO,
    H36M,
    H36M32_KEPT,
    H36M_ACTIONS,
    coco_to_h36m,
    h36m_action_name,
)
from datamodules.windows import PoseWindowDataset

TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")
SKIPPED = (("S11", "Directions"),)  # corrupt video; VideoPose3D drops all 4 cameras
REAL_DEFAULT_SOURCE = "cpn_ft_h36m_dbb"
SYNTHETIC_DEFAULT_SOURCE = "synthetic_det"


def cache_folder(root: str | Path, source: str) -> Path:
    return Path(root) / "cache" / source


def missing_dataset_message(root: str | Path, source: str) -> str:
    root = Path(root)
    return (
        f"Human3.6M data not found in {root.resolve()}/.\n"
        f"Expected the VideoPose3D files {root / FILE_3D} and {root / file_2d(source)}, then a "
        f"prepared cache {cache_folder(root, source)}/.\n"
        "To obtain them: build data_3d_h36m.npz from the official Human3.6M D3_Positions with "
        "VideoPose3D's data/prepare_data_h36m.py, and download the 2D detections "
        f"(e.g. data_2d_h36m_{REAL_DEFAULT_SOURCE}.npz) as described in VideoPose3D's "
        "DATASETS.md. Then run\n"
        f"  python -m datamodules.h36m prepare --root {root} --keypoints {source}\n"
        "  (or make prepare-3d DATA=h36m KEYPOINTS=<source>).\n"
        "To try the pipeline without the dataset use the synthetic set: make train-3d "
        "DATA=synthetic (= python -m pose3d fit --config configs/pose3d/synthetic.yaml)."
    )


# 2D joint orders a VideoPose3D 2D file may declare (metadata ``layout_name``); absent = h36m.
LAYOUTS_2D = {"h36m": H36M, "coco": COCO}
NonFinite = Literal["error", "drop"]


def check_2d_layout(metadata: dict, path: Path, override: str | None = None) -> str:
    """The 2D file's joint order: ``override`` (``prepare --layout``), else ``layout_name``
    (absent: ``h36m``), refused when unknown or when ``keypoints_symmetry`` contradicts it
    (COCO-order keypoints read as H36M are silently mis-scored)."""
    declared = override or metadata.get("layout_name") or "h36m"
    if declared not in LAYOUTS_2D:
        raise BadInputError(
            f"{path}: unknown metadata layout_name {declared!r}; known: "
            f"{', '.join(LAYOUTS_2D)} (fix the file's metadata or pass --layout h36m|coco)"
        )
    sym = metadata.get("keypoints_symmetry")
    if override or not sym or not any(len(side) for side in sym):
        return declared  # nothing stated (or the user decided): trust the name
    stated = [sorted(int(j) for j in side) for side in sym]

    def symmetry(name: str) -> list[list[int]]:
        return [sorted(LAYOUTS_2D[name].left), sorted(LAYOUTS_2D[name].right)]

    if stated == symmetry(declared):
        return declared
    match = [n for n in LAYOUTS_2D if stated == symmetry(n)]
    said = f"layout_name {declared!r}" if metadata.get("layout_name") else "no layout_name (h36m)"
    what = f"is the {match[0]} layout's" if match else "matches no known layout"
    fix = f"--layout {match[0]}" if match else "--layout h36m|coco"
    raise BadInputError(
        f"{path}: metadata keypoints_symmetry {stated} {what} but the file declares {said}; "
        f"fix layout_name in the file's metadata or prepare with {fix}"
    )


def _nonfinite_entries(
    positions_3d: dict, positions_2d: dict, confidences: dict | None, items: list, p3d, p2d
) -> list[tuple[tuple[str, str, int], str]]:
    """((subject, action, camera), description) of every prepared sequence holding NaN/Inf."""
    bad = []
    for subject, action, c in items:
        n = len(positions_3d[subject][action])
        arrays = [
            (p3d, "3D", np.asarray(positions_3d[subject][action])),
            (p2d, "2D", np.asarray(positions_2d[subject][action][c])[:n]),
        ]
        if confidences is not None:
            arrays.append((p2d, "confidence", np.asarray(confidences[subject][action][c])[:n]))
        for path, what, x in arrays:
            finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
            if not finite.all():
                frames = np.flatnonzero(~finite)
                bad.append(
                    (
                        (subject, action, c),
                        f"{path}: {subject} / {action!r} camera {c}: {len(frames)} frames with "
                        f"NaN/Inf {what} values (first: frame {frames[0]})",
                    )
                )
                break
    return bad


def _to_h36m_layout(kp: np.ndarray, layout: str, path: Path) -> np.ndarray:
    if layout == "coco":
        return coco_to_h36m(kp)
    if kp.shape[-2] != H36M.num_joints:
        raise BadInputError(
            f"{path}: 2D keypoints have {kp.shape[-2]} joints (layout {layout!r}); "
            "expected the 17-joint Human3.6M layout or 'coco'"
        )
    return kp


def prepare_h36m(
    root: str | Path,
    keypoints: str = REAL_DEFAULT_SOURCE,
    skip: Sequence[tuple[str, str]] = SKIPPED,
    layout: str | None = None,
    nonfinite: NonFinite = "error",
) -> Path:
    """Read the VideoPose3D npz files once and write the pickle-free cache; returns its folder.
    ``layout`` / ``nonfinite``: see :func:`build_h36m_cache`.

    The one place (with the 3DHP prepare) where a user's pickled npz is unpickled: only the
    explicit ``python -m datamodules.h36m prepare`` command calls it.
    """
    root = Path(root)
    p3d, p2d = root / FILE_3D, root / file_2d(keypoints)
    missing = [str(p) for p in (p3d, p2d) if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"missing {', '.join(missing)}\n\n" + missing_dataset_message(root, keypoints)
        )
    print(
        f"prepare: unpickling {p3d} and {p2d} (allow_pickle=True: the VideoPose3D format "
        "stores pickled dicts; only prepare files you trust)"
    )
    positions_3d = load_pickled_npz(p3d, "positions_3d")
    positions_2d = load_pickled_npz(p2d, "positions_2d")
    metadata = load_pickled_npz(p2d, "metadata", required=False) or {}
    confidences = load_pickled_npz(p2d, "confidences", required=False)
    return build_h36m_cache(
        root, keypoints, positions_3d, positions_2d, metadata, confidences, skip, layout,
        nonfinite,
    )  # fmt: skip


def build_h36m_cache(
    root: str | Path,
    keypoints: str,
    positions_3d: dict,
    positions_2d: dict,
    metadata: dict,
    confidences: dict | None = None,
    skip: Sequence[tuple[str, str]] = SKIPPED,
    layout: str | None = None,
    nonfinite: NonFinite = "error",
) -> Path:
    """Write ``<root>/cache/<keypoints>/`` from the (already loaded) VideoPose3D dicts.

    Args:
        root: dataset folder; the files are named after ``FILE_3D`` / ``file_2d(keypoints)``.
        keypoints: 2D source name.
        positions_3d: subject -> action -> ``(F, 32, 3)`` world metres.
        positions_2d: subject -> action -> 4 cameras × ``(F', 17, 2)`` pixels.
        metadata: the 2D file's metadata (``layout_name``, ``keypoints_symmetry``, ...).
        confidences: optional subject -> action -> 4 × ``(F', 17)`` scores.
        skip: (subject, action) pairs left out.
        layout: the 2D joint order when the metadata is wrong (None: checked from it).
        nonfinite: NaN/Inf in a sequence: ``error`` (one line naming it) or ``drop`` (the
            sequence is left out, with a count).
    """
    root = Path(root)
    p3d, p2d = root / FILE_3D, root / file_2d(keypoints)
    layout = check_2d_layout(metadata, p2d, layout)

    items: list[tuple[str, str, int]] = []  # (subject, action, camera index)
    for subject in sorted(positions_3d, key=lambda s: int(s.lstrip("S"))):
        for action in sorted(positions_3d[subject]):
            if (subject, action) in skip:
                continue
            if h36m_action_name(action) not in H36M_ACTIONS:
                raise BadInputError(
                    f"{p3d}: unknown action {action!r} of {subject}; known: {H36M_ACTIONS}"
                )
            if subject not in positions_2d or action not in positions_2d[subject]:
                raise BadInputError(f"{p2d} has no 2D keypoints for {subject} / {action!r}")
            cams = positions_2d[subject][action]
            if len(cams) != 4:
                raise BadInputError(
                    f"{p2d}: {subject} / {action!r} has {len(cams)} cameras, expected 4"
                )
            n3d = len(positions_3d[subject][action])
            for c in range(4):
                if len(cams[c]) < n3d:
                    raise BadInputError(
                        f"{p2d}: {subject} / {action!r} camera {c} has {len(cams[c])} 2D frames "
                        f"but the mocap in {p3d} has {n3d}; 2D must cover every mocap frame"
                    )
                items.append((subject, action, c))
    bad = _nonfinite_entries(positions_3d, positions_2d, confidences, items, p3d, p2d)
    index = {it: i for i, it in enumerate(items)}
    items = drop_nonfinite(items, [(index[key], msg) for key, msg in bad], nonfinite)
    if not items:
        raise BadInputError(
            f"{p3d} + {p2d}: no sequence to prepare (3D subjects: "
            f"{', '.join(sorted(positions_3d)) or 'none'}; every one skipped or dropped); "
            "check that the files hold Human3.6M subjects S1..S11 with 2D for each action"
        )
    lengths = [len(positions_3d[s][a]) for s, a, _ in items]

    def sequences() -> Iterator[CacheSequence]:
        for subject, action, c in items:
            cam = h36m_camera(subject, c)
            world = np.asarray(positions_3d[subject][action], dtype=np.float64)
            if world.ndim != 3 or world.shape[1:] != (32, 3):
                raise BadInputError(
                    f"{p3d}: {subject} / {action!r} has shape {world.shape}, expected (F, 32, 3)"
                )
            n = len(world)
            cam3d = world_to_camera(world[:, list(H36M32_KEPT)], cam.orientation, cam.translation)
            kp = np.asarray(positions_2d[subject][action][c], dtype=np.float64)[:n]
            kp = _to_h36m_layout(kp, layout, p2d)
            conf = None
            if confidences is not None:
                conf = np.asarray(confidences[subject][action][c], dtype=np.float32)[:n]
            yield CacheSequence(
                pos2d=normalize_screen_coordinates(kp, cam.res_w, cam.res_h).astype(np.float32),
                pos3d=root_relative(cam3d, H36M.root).astype(np.float32),
                conf=conf,
                record={
                    "subject": subject,
                    "action": action,
                    "group": h36m_action_name(action),
                    "camera": cam.id,
                    "res_w": cam.res_w,
                    "res_h": cam.res_h,
                    "fps": 50,
                },
            )

    meta = {
        "dataset": "h36m",
        "source": keypoints,
        "skeleton": H36M.name,
        "files": [p3d.name, p2d.name],
        "layout_2d": layout,
    }
    return write_cache(
        cache_folder(root, keypoints),
        sequences,
        lengths,
        meta,
        H36M.num_joints,
        with_conf=confidences is not None,
    )


class SubjectsError(UserError, ValueError):
    """The cache lacks every subject a stage needs (one line, exit status 2)."""


def present_subjects(
    cache: Path,
    have: Sequence[str],
    train_subjects: Sequence[str],
    test_subjects: Sequence[str],
    fit: bool,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The requested training / evaluation subjects that the cache holds (a partial download,
    a rendered subset): evaluation needs only evaluation subjects and training only training
    subjects. Absent ones are announced in one line each (the metrics then cover only the
    present ones); a stage with none of its subjects stops with one line.
    """
    train = tuple(s for s in train_subjects if s in have)
    test = tuple(s for s in test_subjects if s in have)
    for what, flag, want, got in (("training", "train", train_subjects, train),
                                  ("evaluation", "test", test_subjects, test)):  # fmt: skip
        if not got and (fit if what == "training" else not fit):
            raise SubjectsError(
                f"{cache} holds subjects {', '.join(have)} but none of the {what} subjects "
                f"{', '.join(want)}; choose with --data.init_args.{flag}_subjects=[...]"
            )
        absent = [s for s in want if s not in got]
        if absent and (fit or what == "evaluation"):
            scope = f"{what} on {', '.join(got)} only" if got else "no validation during fit"
            note = (
                " (its metrics cover these subjects only)" if what == "evaluation" and got else ""
            )
            rank_zero_warn(f"{cache}: {what} subjects {', '.join(absent)} absent; {scope}{note}")
    return train, test


class H36MDataModule(LiftingDataModule):
    """Human3.6M (or the synthetic stand-in) as windows of ``frames`` 2D poses → 3D poses.

    ``keypoints`` names the 2D source file ``data_2d_h36m_<keypoints>.npz`` (default
    ``cpn_ft_h36m_dbb``; ``synthetic_det`` with ``synthetic=True``). ``root`` defaults to
    ``data/h36m`` (``data/synthetic_h36m`` with ``synthetic=True``). With ``synthetic=True`` the
    set and its caches are generated into ``root`` on first use, but only into a missing or empty
    folder or one the generator marked (``GENERATED.json``); a prepared cache in ``root`` is
    used as it is. Real files are never unpickled here: their cache is built by the explicit
    ``python -m datamodules.h36m prepare``. Validation and test use ``test_subjects``, one window
    per frame.

    Args:
        root: folder with data_3d_h36m.npz and data_2d_h36m_<keypoints>.npz (None: default).
        keypoints: 2D source name: cpn_ft_h36m_dbb, gt, detectron_ft_h36m, or an export.
        frames: window length T (odd, 1..243); also sizes the model (linked to model.frames).
        batch_size: training windows per GPU (the global batch is batch_size × GPUs).
        eval_batch_size: validation/test windows per GPU (None: batch_size).
        num_workers: DataLoader worker processes.
        train_subjects: training subjects (paper: S1 S5 S6 S7 S8).
        test_subjects: validation/test subjects (paper: S9 S11).
        downsample: use every downsample-th frame of each sequence (windows on that grid).
        stride: a training window centred on every stride-th (downsampled) frame.
        flip_augment: horizontal-flip augmentation of training windows (mirrored joints).
        flip_prob: probability of flipping a training window (flip_mode "random" only).
        flip_mode: "double" (default, official VideoPose3D/PoseFormer generator): every
            training window twice per epoch, as is and mirrored, shuffled together (an epoch
            is 2× the windows); "random": each window mirrored with flip_prob when drawn.
        synthetic: use the synthetic Human3.6M-format stand-in (generated on first use).
        synthetic_frames: frames per synthetic sequence.
        synthetic_seed: seed of the synthetic generator.
        pin_memory: pinned host memory (None: on when CUDA is available).
    """

    skeleton = H36M
    group_names = list(H36M_ACTIONS)

    def __init__(
        self,
        root: str | None = None,
        keypoints: str | None = None,
        frames: int = 81,
        batch_size: int = 1024,
        eval_batch_size: int | None = None,
        num_workers: int = 2,
        train_subjects: tuple[str, ...] = TRAIN_SUBJECTS,
        test_subjects: tuple[str, ...] = TEST_SUBJECTS,
        downsample: int = 1,
        stride: int = 1,
        flip_augment: bool = True,
        flip_prob: float = 0.5,
        flip_mode: Literal["double", "random"] = "double",
        synthetic: bool = False,
        synthetic_frames: int = 160,
        synthetic_seed: int = 0,
        pin_memory: bool | None = None,
    ) -> None:
        super().__init__(
            frames, batch_size, eval_batch_size, num_workers, pin_memory, downsample, stride,
            flip_prob, flip_mode if flip_augment else "none",
        )  # fmt: skip
        self.synthetic = synthetic
        default_root = "data/synthetic_h36m" if synthetic else "data/h36m"
        self.root = Path(root or default_root)
        default_source = SYNTHETIC_DEFAULT_SOURCE if synthetic else REAL_DEFAULT_SOURCE
        self.keypoints = keypoints or default_source
        self.train_subjects, self.test_subjects = tuple(train_subjects), tuple(test_subjects)
        self.synthetic_frames, self.synthetic_seed = synthetic_frames, synthetic_seed

    @property
    def cache_folder(self) -> Path:
        return cache_folder(self.root, self.keypoints)

    def _raw_present(self) -> bool:
        return (self.root / FILE_3D).is_file() and (self.root / file_2d(self.keypoints)).is_file()

    def _must_generate(self) -> bool:
        """Whether ``prepare_data`` (re)generates the synthetic set; raises
        :class:`~datamodules.generated_folder.ForeignFolderError` when it would have to write
        over files it did not write."""
        from datamodules import synthetic_h36m as syn

        if not self.synthetic:
            return False
        generated = self.keypoints in syn.SOURCES
        params = syn.synthetic_params(self.synthetic_seed, self.synthetic_frames)
        if owned_by(self.root, syn.GENERATOR):
            current = is_current(self.root, syn.GENERATOR, syn.GENERATOR_VERSION, params)
            return generated and not (current and cache_exists(self.cache_folder))
        if cache_exists(self.cache_folder) or not generated:
            return False  # a prepared (pickle-free) cache, e.g. of a rendered set; or missing
        expected = [FILE_3D] + [file_2d(k) for k in syn.SOURCES]
        claim(self.root, syn.GENERATOR, syn.ways_out(self.root), expected)
        return True

    def prepare_data(self) -> None:
        """Rank 0 only: generate the synthetic set (npz files + caches) when needed."""
        if self._must_generate():
            from datamodules.synthetic_h36m import generate_synthetic_h36m

            generate_synthetic_h36m(
                self.root, seed=self.synthetic_seed, frames=self.synthetic_frames
            )

    def _prepare_command(self) -> str:
        return f"python -m datamodules.h36m prepare --root {self.root} --keypoints {self.keypoints}"

    def _missing_message(self) -> str:
        from datamodules.synthetic_h36m import SOURCES

        if self.synthetic and self.keypoints not in SOURCES:
            missing = [str(p) for p in (self.root / FILE_3D, self.root / file_2d(self.keypoints))]
            missing = [p for p in missing if not Path(p).is_file()]
            return (
                f"missing {', '.join(missing)} and no prepared cache {self.cache_folder}/: the "
                f"synthetic generator writes only the sources {', '.join(SOURCES)}; write "
                f"{file_2d(self.keypoints)} first (our detector's keypoints: make "
                f"export-2d-keypoints RENDER={self.root} KP_NAME={self.keypoints}), then "
                f"{self._prepare_command()}"
            )
        return missing_dataset_message(self.root, self.keypoints)

    def _will_prepare(self) -> bool:
        return self._must_generate()

    def setup(self, stage: str | None = None) -> None:
        cache = self._read_cache()
        subjects = np.array([r["subject"] for r in cache.sequences])
        group = np.array([self.group_names.index(r["group"]) for r in cache.sequences])
        fit = stage in (None, "fit")
        train, test = present_subjects(
            self.cache_folder, sorted(set(subjects.tolist())), self.train_subjects,
            self.test_subjects, fit,
        )  # fmt: skip

        def dataset(names: tuple[str, ...], train: bool) -> PoseWindowDataset:
            return self._windows(cache, np.flatnonzero(np.isin(subjects, names)), group, train)

        if fit:
            self.train_set = dataset(train, train=True)
        self.test_set = dataset(test, train=False) if test else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m datamodules.h36m",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="convert the VideoPose3D npz files into the cache")
    prep.add_argument("--root", default="data/h36m")
    prep.add_argument("--keypoints", default=REAL_DEFAULT_SOURCE)
    prep.add_argument(
        "--layout",
        choices=tuple(LAYOUTS_2D),
        default=None,
        help="joint order of the 2D file when its metadata is wrong (default: from metadata)",
    )
    prep.add_argument(
        "--nonfinite",
        choices=("error", "drop"),
        default="error",
        help="sequences with NaN/Inf: stop naming the first (default) or leave them out",
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    folder = prepare_h36m(args.root, args.keypoints, layout=args.layout, nonfinite=args.nonfinite)
    cache = read_cache(folder)
    print(
        f"wrote {folder}: {cache.num_sequences} sequences, {len(cache.pos2d)} frames "
        f"in {time.perf_counter() - t0:.1f} s"
    )


if __name__ == "__main__":
    sys.exit(exit_code(main))
