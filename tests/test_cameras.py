import numpy as np
import pytest

from datamodules.cameras import (
    H36M_CAMERA_IDS,
    H36M_SUBJECTS,
    camera_to_world,
    h36m_camera,
    image_coordinates,
    normalize_screen_coordinates,
    project_to_2d,
    qinverse,
    qrot,
    world_to_camera,
)


def test_normalize_screen_coordinates_hand_values_and_round_trip():
    px = np.array([[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]])
    norm = normalize_screen_coordinates(px, w=1000, h=1002)
    np.testing.assert_allclose(norm, [[-1.0, -1.002], [1.0, 1.002], [0.0, 0.0]], atol=1e-12)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 2048, (5, 17, 2))
    np.testing.assert_allclose(
        image_coordinates(normalize_screen_coordinates(x, 1920, 1080), 1920, 1080),
        x,
        rtol=0,
        atol=1e-9,
    )


def test_quaternion_rotation_hand_value_and_inverse():
    # 90° about z: x → y
    q = np.array([np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)])
    np.testing.assert_allclose(qrot(q, np.array([1.0, 0.0, 0.0])), [0.0, 1.0, 0.0], atol=1e-12)
    v = np.random.default_rng(1).normal(size=(4, 3))
    np.testing.assert_allclose(qrot(qinverse(q), qrot(q, v)), v, atol=1e-12)


@pytest.mark.parametrize("subject", H36M_SUBJECTS)
def test_h36m_calibration_is_consistent(subject):
    for c, cam_id in enumerate(H36M_CAMERA_IDS):
        cam = h36m_camera(subject, c)
        assert cam.id == cam_id
        assert (cam.res_w, cam.res_h) == ((1000, 1002) if c in (0, 3) else (1000, 1000))
        assert np.linalg.norm(cam.orientation) == pytest.approx(1.0, abs=1e-6)
        # cameras stand ~5 m from the capture-space centre at ~1.5 m height
        assert 4.0 < np.linalg.norm(cam.translation[:2]) < 6.0
        assert 1.4 < cam.translation[2] < 1.7
        # the centre of the capture space at pelvis height is in front of the camera and in view
        target = world_to_camera(np.array([0.0, 0.0, 1.0]), cam.orientation, cam.translation)
        assert target[2] > 3.0
        px = project_to_2d(target, cam.intrinsic)
        assert 0 < px[0] < cam.res_w and 0 < px[1] < cam.res_h


def test_world_camera_round_trip_preserves_distances():
    cam = h36m_camera("S9", 2)
    x = np.random.default_rng(2).normal(size=(10, 17, 3))
    # the published quaternions are float32, unit only to ~1e-7: exact to ~1e-6 m, not 1e-12
    xc = world_to_camera(x, cam.orientation, cam.translation)
    np.testing.assert_allclose(camera_to_world(xc, cam.orientation, cam.translation), x, atol=5e-6)
    np.testing.assert_allclose(
        np.linalg.norm(xc[:, 1] - xc[:, 0], axis=-1),
        np.linalg.norm(x[:, 1] - x[:, 0], axis=-1),
        atol=5e-6,
    )
    # the camera centre maps to the origin
    np.testing.assert_allclose(
        world_to_camera(cam.translation, cam.orientation, cam.translation), 0.0, atol=1e-12
    )


def test_point_on_optical_axis_projects_to_principal_point():
    cam = h36m_camera("S1", 0)
    px = project_to_2d(np.array([[0.0, 0.0, 4.2]]), cam.intrinsic)
    np.testing.assert_allclose(px[0], cam.intrinsic[2:4], atol=1e-12)


def test_distortion_hand_computed():
    intr = np.array([2.0, 3.0, 10.0, 20.0, 0.1, 0.0, 0.0, 0.0, 0.0])
    # xx = (0.5, 0.2), r2 = 0.29, radial = 1.029
    np.testing.assert_allclose(project_to_2d(np.array([0.5, 0.2, 1.0]), intr), [11.029, 20.6174])
    intr[7:] = [0.01, 0.02]
    # tan = 0.009; x = 0.5 * 1.038 + 0.01 * 0.29, y = 0.2 * 1.038 + 0.02 * 0.29
    np.testing.assert_allclose(project_to_2d(np.array([1.0, 0.4, 2.0]), intr), [11.0438, 20.6402])
