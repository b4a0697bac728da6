import numpy as np
import pytest
import torch

from datamodules.skeleton import (
    COCO,
    COCO_OKS_SIGMAS,
    H36M,
    H36M32_KEPT,
    MPI_INF_3DHP,
    MPI_PCK_JOINTS,
    coco_to_h36m,
    flip_pose,
    h36m_to_mpi,
    mpi_to_h36m,
)


@pytest.mark.parametrize("skel", [COCO, H36M, MPI_INF_3DHP], ids=lambda s: s.name)
def test_layout_is_consistent(skel):
    n = skel.num_joints
    assert n == 17
    assert sorted(skel.flip_index) == list(range(n))
    # every left joint's name says "left", every right one "right"
    for a, b in skel.flip_pairs:
        assert "left" in skel.joint_names[a] and "right" in skel.joint_names[b]
        assert skel.joint_names[a].replace("left", "right") == skel.joint_names[b]
    assert skel.parents[skel.root] == -1


def test_h36m_matches_videopose3d_conventions():
    assert H36M.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
    assert H36M.left == (4, 5, 6, 11, 12, 13) and H36M.right == (1, 2, 3, 14, 15, 16)
    assert H36M32_KEPT == (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
    assert MPI_INF_3DHP.root == 14 and len(MPI_PCK_JOINTS) == 14
    assert COCO_OKS_SIGMAS.shape == (17,) and COCO_OKS_SIGMAS[0] == pytest.approx(0.026)


@pytest.mark.parametrize("skel", [COCO, H36M, MPI_INF_3DHP], ids=lambda s: s.name)
@pytest.mark.parametrize("width", [None, 640.0])
def test_flip_is_involution(skel, width):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5, 17, 3)).astype(np.float32)
    once = flip_pose(x, skel, width)
    assert not np.allclose(once, x)
    np.testing.assert_allclose(flip_pose(once, skel, width), x, atol=1e-4)
    t = torch.from_numpy(x)
    np.testing.assert_allclose(flip_pose(t, skel, width).numpy(), once, atol=1e-4)
    torch.testing.assert_close(
        flip_pose(flip_pose(t, skel, width), skel, width), t, atol=1e-4, rtol=0
    )


def test_flip_mirrors_left_wrist_to_right_wrist():
    x = np.zeros((17, 2))
    lw, rw = H36M.index("left_wrist"), H36M.index("right_wrist")
    x[lw] = [0.3, 0.1]
    y = flip_pose(x, H36M)
    np.testing.assert_allclose(y[rw], [-0.3, 0.1])
    np.testing.assert_allclose(y[lw], [0.0, 0.0])


def test_coco_to_h36m_hand_made_pose():
    c = COCO.index
    pose = np.zeros((17, 3))
    pose[:, 2] = 0.9
    pose[c("left_hip")] = [10, 100, 0.8]
    pose[c("right_hip")] = [30, 100, 0.6]
    pose[c("left_shoulder")] = [0, 40, 0.7]
    pose[c("right_shoulder")] = [40, 44, 0.5]
    pose[c("nose")] = [20, 20, 0.95]
    pose[c("left_eye")] = [18, 16, 0.9]
    pose[c("right_eye")] = [22, 18, 0.9]
    pose[c("left_wrist")] = [-5, 90, 0.4]
    out = coco_to_h36m(pose)
    h = H36M.index
    np.testing.assert_allclose(out[h("pelvis")], [20, 100, 0.6])
    np.testing.assert_allclose(out[h("thorax")], [20, 42, 0.5])
    np.testing.assert_allclose(out[h("spine")], [20, 71, 0.5])
    np.testing.assert_allclose(out[h("neck_nose")], [20, 20, 0.95])
    np.testing.assert_allclose(out[h("head")], [20, 17, 0.9])
    np.testing.assert_allclose(out[h("left_wrist")], [-5, 90, 0.4])
    np.testing.assert_allclose(out[h("right_hip")], [30, 100, 0.6])
    # torch path agrees, and 2-channel input works
    torch.testing.assert_close(
        coco_to_h36m(torch.from_numpy(pose)), torch.from_numpy(out), check_dtype=False
    )
    np.testing.assert_allclose(coco_to_h36m(pose[None, :, :2])[0], out[:, :2])


def test_coco_to_h36m_commutes_with_flip():
    rng = np.random.default_rng(1)
    pose = rng.uniform(0, 100, size=(3, 17, 2))
    np.testing.assert_allclose(
        coco_to_h36m(flip_pose(pose, COCO, 100.0)),
        flip_pose(coco_to_h36m(pose), H36M, 100.0),
        atol=1e-9,
    )


def test_mpi_h36m_round_trip():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 17, 3))
    np.testing.assert_array_equal(h36m_to_mpi(mpi_to_h36m(x)), x)
    np.testing.assert_array_equal(mpi_to_h36m(h36m_to_mpi(x)), x)
    h = mpi_to_h36m(x)
    np.testing.assert_array_equal(h[:, H36M.root], x[:, MPI_INF_3DHP.root])
    np.testing.assert_array_equal(
        h[:, H36M.index("left_wrist")], x[:, MPI_INF_3DHP.index("left_wrist")]
    )
    t = torch.from_numpy(x)
    torch.testing.assert_close(h36m_to_mpi(mpi_to_h36m(t)), t)


def test_torch_joint_index_is_built_once_and_autograd_safe():
    """Flip TTA runs every batch: the permutation tensor is cached per device (no host→device
    copy per call), and one first built under inference mode still works with autograd."""
    from datamodules.skeleton import joint_index_tensor

    with torch.inference_mode():
        flip_pose(torch.zeros(1, 17, 3), MPI_INF_3DHP)  # first use inside validation
    idx = joint_index_tensor(MPI_INF_3DHP.flip_index, torch.device("cpu"))
    assert idx is joint_index_tensor(MPI_INF_3DHP.flip_index, torch.device("cpu"))
    assert idx.tolist() == list(MPI_INF_3DHP.flip_index) and not idx.is_inference()
    x = torch.randn(2, 17, 3, requires_grad=True)
    flip_pose(x, MPI_INF_3DHP).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([-1.0, 1.0, 1.0]).expand(2, 17, 3))
