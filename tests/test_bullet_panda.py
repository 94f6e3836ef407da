"""Tests for robots/bullet_panda.py: the real PyBullet Panda scene, its IK commands and its sensing."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pybullet as p
import pytest

from robots.bullet_panda import CUBE_HALF, DOWN_QUAT, EE_LINK, PandaScene


@pytest.fixture()
def scene() -> Iterator[PandaScene]:
    s = PandaScene(with_cube=True)
    yield s
    s.close()


def _drive(scene: PandaScene, target: np.ndarray, gripper: float, steps: int) -> None:
    """Move towards ``target`` at most 2 cm per control step, as the environments do."""
    for _ in range(steps):
        ee = scene.read().ee_pos
        scene.command(ee + np.clip(target - ee, -0.02, 0.02), gripper)
        scene.simulate()


def test_reset_arm_puts_the_end_effector_at_the_target_fingers_down(scene: PandaScene) -> None:
    target = np.array([0.5, 0.1, 0.2])
    scene.reset_arm(target)
    state = scene.read()
    assert np.linalg.norm(state.ee_pos - target) < 0.005
    assert state.finger_opening == pytest.approx(0.08)
    assert np.allclose(state.ee_vel, 0.0)
    quat = p.getLinkState(scene.robot, EE_LINK, physicsClientId=scene.client)[5]
    assert abs(float(np.dot(quat, DOWN_QUAT))) > 0.999  # same rotation (q and -q alike)


def test_command_tracks_a_cartesian_target_and_keeps_orientation(scene: PandaScene) -> None:
    scene.reset_arm(np.array([0.45, 0.0, 0.25]))
    target = np.array([0.55, -0.15, 0.12])
    _drive(scene, target, -1.0, 25)
    assert np.linalg.norm(scene.read().ee_pos - target) < 0.01
    quat = p.getLinkState(scene.robot, EE_LINK, physicsClientId=scene.client)[5]
    assert abs(float(np.dot(quat, DOWN_QUAT))) > 0.995


def test_cube_rests_on_the_table_and_grasp_is_detected(scene: PandaScene) -> None:
    scene.reset_arm(np.array([0.5, 0.0, 0.15]))
    scene.reset_cube(np.array([0.5, 0.0, CUBE_HALF]), 0.0)
    for _ in range(5):
        scene.simulate()
    state = scene.read()
    assert state.cube_pos[2] == pytest.approx(CUBE_HALF, abs=1e-3)  # table top is z = 0
    assert state.fingers_touching == (False, False)
    _drive(scene, np.array([0.5, 0.0, CUBE_HALF]), -1.0, 12)
    _drive(scene, np.array([0.5, 0.0, CUBE_HALF]), 1.0, 8)
    state = scene.read()
    assert state.fingers_touching == (True, True)
    assert state.finger_opening == pytest.approx(2 * CUBE_HALF, abs=0.006)
    _drive(scene, np.array([0.5, 0.0, 0.2]), 1.0, 12)
    assert scene.read().cube_pos[2] > 0.15  # held and lifted by friction alone


def test_reset_cube_replaces_the_body_and_normalises_the_quaternion(scene: PandaScene) -> None:
    old = scene.cube
    scene.reset_cube(np.array([0.4, 0.1, CUBE_HALF]), 3.0)  # yaw 3 rad gives w < 0 unless flipped
    state = scene.read()
    assert p.getNumBodies(physicsClientId=scene.client) == 3  # robot, table, one cube
    assert scene.cube is not None and old is not None
    assert np.allclose(state.cube_pos, [0.4, 0.1, CUBE_HALF])
    assert state.cube_quat[3] >= 0.0 and np.linalg.norm(state.cube_quat) == pytest.approx(1.0)


def test_scene_without_cube_reads_arm_only() -> None:
    s = PandaScene(with_cube=False)
    s.reset_arm(np.array([0.45, 0.0, 0.25]))
    state = s.read()
    assert state.cube_pos is None and s.cube is None
    img = s.render(64, 48)
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    s.close()
    s.close()


def test_two_scenes_have_separate_clients() -> None:
    a, b = PandaScene(with_cube=False), PandaScene(with_cube=False)
    assert a.client != b.client
    a.reset_arm(np.array([0.4, 0.2, 0.3]))
    b.reset_arm(np.array([0.5, -0.2, 0.1]))
    assert np.linalg.norm(a.read().ee_pos - [0.4, 0.2, 0.3]) < 0.005
    assert np.linalg.norm(b.read().ee_pos - [0.5, -0.2, 0.1]) < 0.005
    a.close()
    assert np.linalg.norm(b.read().ee_pos - [0.5, -0.2, 0.1]) < 0.005  # b survives a's disconnect
    b.close()


def test_invalid_construction_raises() -> None:
    with pytest.raises(ValueError, match="substeps"):
        PandaScene(with_cube=False, substeps=0)
