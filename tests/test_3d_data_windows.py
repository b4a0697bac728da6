import pickle
import weakref

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from datamodules.buffer_pool import BufferPool
from datamodules.sequence_cache import Sequence, read_cache, write_cache
from datamodules.skeleton import H36M, flip_pose
from datamodules.windows import (
    PoseWindowDataset,
    apply_pending_flips,
    build_samples,
    collate_batched,
    gather_windows,
    mirror_flagged,
    window_rows,
)


def test_build_samples_stride_downsample_and_valid():
    seq, frame = build_samples(np.array([3, 5]), stride=2)
    assert seq.tolist() == [0, 0, 1, 1, 1] and frame.tolist() == [0, 2, 0, 2, 4]
    # downsample 2: sequence 0 (3 frames) → grid 0, 2; sequence 1 (5 frames) → 0, 2, 4
    seq, frame = build_samples(np.array([3, 5]), downsample=2)
    assert seq.tolist() == [0, 0, 1, 1, 1] and frame.tolist() == [0, 2, 0, 2, 4]
    seq, frame = build_samples(np.array([3, 5]), seqs=np.array([1]))
    assert seq.tolist() == [1] * 5 and frame.tolist() == [0, 1, 2, 3, 4]
    valid = np.array([1, 0, 1, 0, 0, 1, 1, 0], bool)
    seq, frame = build_samples(np.array([3, 5]), valid=valid, offsets=np.array([0, 3]))
    assert seq.tolist() == [0, 0, 1, 1] and frame.tolist() == [0, 2, 2, 3]


def test_window_rows_edge_padding_at_both_ends():
    offsets, lengths = np.array([0, 3]), np.array([3, 5])
    rows = window_rows(offsets, lengths, np.array([0, 1, 1]), np.array([0, 4, 2]), frames=5)
    assert rows.tolist() == [[0, 0, 0, 1, 2], [5, 6, 7, 7, 7], [3, 4, 5, 6, 7]]
    # downsample 2 on a 6-frame sequence: grid 0, 2, 4; window around 4 repeats 4 on the right
    rows = window_rows(np.array([0]), np.array([6]), np.array([0]), np.array([4]), 5, 2)
    assert rows.tolist() == [[0, 2, 4, 4, 4]]
    with pytest.raises(ValueError, match="odd"):
        window_rows(offsets, lengths, np.array([0]), np.array([0]), frames=4)


def _tiny_cache(tmp_path, lengths=(4, 6), with_conf=True):
    rng = np.random.default_rng(0)
    seqs = [
        Sequence(
            pos2d=rng.normal(size=(n, 17, 2)).astype(np.float32),
            pos3d=rng.normal(size=(n, 17, 3)).astype(np.float32),
            conf=rng.uniform(size=(n, 17)).astype(np.float32),
            record={"subject": f"S{i}", "group": "Walking"},
        )
        for i, n in enumerate(lengths)
    ]
    folder = write_cache(
        tmp_path / "cache",
        lambda: iter(seqs),
        list(lengths),
        {"dataset": "test", "skeleton": "h36m"},
        17,
        with_conf=with_conf,
    )
    return folder, seqs


def test_cache_round_trips_exactly(tmp_path):
    folder, seqs = _tiny_cache(tmp_path)
    cache = read_cache(folder, mmap=True)
    assert isinstance(cache.pos2d, np.memmap)
    assert cache.offsets.tolist() == [0, 4] and cache.lengths.tolist() == [4, 6]
    for i, s in enumerate(seqs):
        rows = slice(cache.offsets[i], cache.offsets[i] + cache.lengths[i])
        assert np.array_equal(cache.pos2d[rows], s.pos2d)
        assert np.array_equal(cache.pos3d[rows], s.pos3d)
        assert np.array_equal(cache.conf[rows], s.conf)
        assert cache.sequences[i] == dict(s.record, length=len(s.pos2d))
    assert cache.valid is None
    assert not (tmp_path / "cache.tmp").exists()


def test_corrupt_cache_is_reported_with_its_path(tmp_path):
    folder, _ = _tiny_cache(tmp_path)
    (folder / "pos3d.npy").write_bytes(b"not an npy file")
    with pytest.raises(ValueError, match="pos3d.npy"):
        read_cache(folder)
    with pytest.raises(FileNotFoundError, match="index.json"):
        read_cache(tmp_path / "nowhere")


def test_window_batch_contract_and_content(tmp_path):
    folder, seqs = _tiny_cache(tmp_path)
    seq, frame = build_samples(np.array([4, 6]))
    ds = PoseWindowDataset(folder, seq, frame, np.array([3, 7]), frames=3, skeleton=H36M)
    assert len(ds) == 10
    batch = ds.__getitems__([0, 9, 5])
    assert set(batch) == {"input_2d", "target_3d", "action", "seq", "frame", "index"}
    assert batch["input_2d"].shape == (3, 3, 17, 2) and batch["input_2d"].dtype == torch.float32
    assert batch["target_3d"].shape == (3, 3, 17, 3) and batch["target_3d"].dtype == torch.float32
    for k in ("action", "seq", "frame", "index"):
        assert batch[k].dtype == torch.int64 and batch[k].shape == (3,)
    assert batch["seq"].tolist() == [0, 1, 1] and batch["frame"].tolist() == [0, 5, 1]
    assert batch["action"].tolist() == [3, 7, 7] and batch["index"].tolist() == [0, 9, 5]
    # sample 0 = frame 0 of seq 0, edge padded on the left; sample 9 = last frame of seq 1
    a, b = seqs[0].pos2d, seqs[1].pos3d
    assert torch.equal(batch["input_2d"][0], torch.from_numpy(a[[0, 0, 1]]))
    assert torch.equal(batch["target_3d"][1], torch.from_numpy(b[[4, 5, 5]]))
    single = ds[5]
    assert single["input_2d"].shape == (3, 17, 2) and int(single["index"]) == 5


def test_flip_augmentation_mirrors_and_is_an_involution(tmp_path):
    folder, _ = _tiny_cache(tmp_path)
    seq, frame = build_samples(np.array([4, 6]))
    plain = PoseWindowDataset(folder, seq, frame, np.array([0, 0]), 5, H36M)
    flipped = PoseWindowDataset(folder, seq, frame, np.array([0, 0]), 5, H36M, flip_prob=1.0)
    ids = list(range(10))
    a, b = plain.__getitems__(ids), flipped.__getitems__(ids)
    assert torch.equal(b["input_2d"], flip_pose(a["input_2d"], H36M))
    assert torch.equal(b["target_3d"], flip_pose(a["target_3d"], H36M))
    assert torch.equal(flip_pose(b["target_3d"], H36M), a["target_3d"])
    half = PoseWindowDataset(folder, seq, frame, np.array([0, 0]), 1, H36M, flip_prob=0.5)
    torch.manual_seed(0)
    x = half.__getitems__(np.zeros(2000, np.int64))["input_2d"][:, 0]
    ref = plain.__getitems__([0])["input_2d"][0, 2]  # the unflipped frame 0
    frac = (x == ref).all(-1).all(-1).float().mean().item()
    assert 0.45 < frac < 0.55


def test_dataloader_gathers_whole_batches_and_pickles_without_arrays(tmp_path):
    folder, _ = _tiny_cache(tmp_path)
    seq, frame = build_samples(np.array([4, 6]))
    ds = PoseWindowDataset(folder, seq, frame, np.array([0, 1]), 3, H36M)
    _ = ds.cache  # opened
    assert len(pickle.dumps(ds)) < 5000  # workers re-open the memory map, no array copies
    batches = list(DataLoader(ds, batch_size=4, collate_fn=collate_batched))
    assert [len(b["index"]) for b in batches] == [4, 4, 2]
    assert torch.cat([b["index"] for b in batches]).tolist() == list(range(10))


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_worker_processes_reopen_the_cache_and_see_every_sample_once(tmp_path):
    folder, _ = _tiny_cache(tmp_path)
    seq, frame = build_samples(np.array([4, 6]))
    ds = PoseWindowDataset(folder, seq, frame, np.array([0, 1]), 3, H36M, flip_prob=0.5)
    loader = DataLoader(ds, batch_size=3, num_workers=2, collate_fn=collate_batched,
                        persistent_workers=True)  # fmt: skip
    for _ in range(2):  # two epochs through the persistent workers
        batches = list(loader)
        assert sorted(torch.cat([b["index"] for b in batches]).tolist()) == list(range(10))
        assert all(b["input_2d"].shape[1:] == (3, 17, 2) for b in batches)


@pytest.mark.parametrize("downsample", [1, 2])
def test_slice_gather_equals_the_clipped_rows_gather(downsample):
    """Both sequence ends, sequences shorter than the window, random order, memory-mapped or
    not: :func:`gather_windows` returns exactly ``array[window_rows(...)]``."""
    rng = np.random.default_rng(downsample)
    lengths = np.array([3, 40, 7, 25, 1, 60])  # several shorter than the T = 9 window
    offsets = np.cumsum(lengths) - lengths
    a2 = rng.normal(size=(lengths.sum(), 17, 2)).astype(np.float32)
    a3 = rng.normal(size=(lengths.sum(), 17, 3)).astype(np.float32)
    seq, frame = build_samples(lengths, downsample=downsample)
    order = np.concatenate([rng.permutation(len(seq)), rng.integers(0, len(seq), 50)])
    seq, frame = seq[order], frame[order]
    rows = window_rows(offsets, lengths, seq, frame, 9, downsample)
    inner = (rows == rows[:, :1] + np.arange(9) * downsample).all(1)
    assert 0 < inner.sum() < len(rows)  # both kinds of windows are in the batch
    g2, g3 = gather_windows((a2, a3), offsets, lengths, seq, frame, 9, downsample)
    assert g2.dtype == np.float32 and g2.shape == (len(seq), 9, 17, 2)
    np.testing.assert_array_equal(g2, a2[rows])
    np.testing.assert_array_equal(g3, a3[rows])
    empty = gather_windows((a2,), offsets, lengths, seq[:0], frame[:0], 9, downsample)[0]
    assert empty.shape == (0, 9, 17, 2)
    with pytest.raises(ValueError, match="odd"):
        gather_windows((a2,), offsets, lengths, seq, frame, 8)


@pytest.mark.parametrize("mode", ["double", "random"])
def test_deferred_flip_gives_the_loader_flip_batch_and_the_reference_gather(tmp_path, mode):
    """flip_at="transfer" + apply_pending_flips == flip_at="loader" == the "rows" reference
    gather, with the same flip draws; the flagged windows are flip_pose of the stored ones."""
    folder, _ = _tiny_cache(tmp_path, lengths=(4, 30, 11))
    seq, frame = build_samples(np.array([4, 30, 11]))
    flip = {"flip_double": True} if mode == "double" else {"flip_prob": 0.5}
    kw = dict(cache_folder=folder, seq=seq, frame=frame, group=np.zeros(3, np.int64), frames=7,
              skeleton=H36M, downsample=1)  # fmt: skip
    ids = np.random.default_rng(0).permutation(len(PoseWindowDataset(**kw, **flip)))
    out = {}
    for flip_at, gather in (("loader", "rows"), ("loader", "slices"), ("transfer", "slices")):
        torch.manual_seed(3)  # the random flips draw from torch's generator
        ds = PoseWindowDataset(**kw, **flip, flip_at=flip_at, gather=gather)
        batch = ds.__getitems__(ids)
        if flip_at == "transfer":
            assert "flip" not in batch and batch["flip_pending"].dtype == torch.bool
            plain = {k: batch[k].clone() for k in ("input_2d", "target_3d")}
            batch = apply_pending_flips(batch, H36M)
        out[flip_at, gather] = batch
    ref = out["loader", "rows"]
    flipped = ref["flip"]
    assert 0 < flipped.sum() < len(ids)
    if mode == "double":
        assert torch.equal(flipped, torch.from_numpy(ids >= len(seq)))
    for got in out.values():
        assert got.keys() == ref.keys()
        for k in ref:
            assert torch.equal(got[k], ref[k]), k
    for k in ("input_2d", "target_3d"):  # mirrored rows: flip_pose of the stored window
        assert torch.equal(ref[k][flipped], flip_pose(plain[k][flipped], H36M))
        assert torch.equal(ref[k][~flipped], plain[k][~flipped])


def test_masked_and_indexed_mirrors_agree():
    x = torch.randn(6, 5, 17, 3)
    flip = torch.tensor([True, False, False, True, True, False])
    masked = mirror_flagged(x.clone(), flip, H36M, masked=True)
    indexed = mirror_flagged(x.clone(), flip, H36M, masked=False)
    assert torch.equal(masked, indexed)
    assert torch.equal(masked[flip], flip_pose(x[flip], H36M))
    assert torch.equal(masked[~flip], x[~flip])
    none = torch.zeros(6, dtype=torch.bool)
    assert torch.equal(mirror_flagged(x.clone(), none, H36M, masked=False), x)


def test_buffer_pool_reuses_only_arrays_nothing_holds():
    pool = BufferPool(2)
    spec = [((3, 4), np.dtype(np.float32)), ((3, 5), np.dtype(np.float32))]
    a = pool.take(spec)
    first = [weakref.ref(x) for x in a]
    held = torch.from_numpy(a[1])[1:]  # a view of a tensor of the second array
    del a
    b = pool.take(spec)
    assert b[0] is not first[0]()  # the first set is still held: a second one
    second = weakref.ref(b[0])
    del b
    assert pool.take(spec)[0] is second()  # the second set is free again: reused
    del held
    c = pool.take(spec)
    assert c[0] is first[0]() and c[1] is first[1]()  # released: reused
    assert pool.take([((2, 4), np.dtype(np.float32))])[0].shape == (2, 4)  # another shape: new
    assert BufferPool(0).take(spec)[0] is not BufferPool(0).take(spec)[0]


def test_a_batch_still_held_is_never_overwritten(tmp_path):
    folder, _ = _tiny_cache(tmp_path, lengths=(30, 30))
    seq, frame = build_samples(np.array([30, 30]))
    ds = PoseWindowDataset(folder, seq, frame, np.zeros(2, np.int64), 5, H36M)
    first = ds.__getitems__(list(range(10, 20)))
    copy = {k: v.clone() for k, v in first.items()}
    for start in (30, 40, 20):  # more batches than the pool keeps
        ds.__getitems__(list(range(start, start + 10)))
    for k in first:
        assert torch.equal(first[k], copy[k]), k
    assert len(pickle.dumps(ds)) < 5000  # the pool's arrays are not pickled
