"""The shared PyBullet walker machinery: model validation, argument errors, observation contents."""

from __future__ import annotations

import numpy as np
import pybullet as p
import pytest

from robots.bullet_locomotion import ANT, HOPPER, AntBulletEnv, HopperBulletEnv, observation_layout
from robots.bullet_walker import CONTROL_DT, OBS_LIMIT, BulletWalkerEnv, WalkerModel


def test_model_needs_one_torque_per_joint() -> None:
    with pytest.raises(ValueError, match="2 joints but 1 torques"):
        WalkerModel(xml="hopper.xml", joints=("thigh", "leg"), torques=(1.0,), feet=(), planar=True)


def test_unknown_joint_is_a_clear_error() -> None:
    class Broken(BulletWalkerEnv):
        model = WalkerModel(xml="hopper.xml", joints=("knee",), torques=(1.0,), feet=(), planar=True)

    clients_before = _open_clients()
    with pytest.raises(ValueError, match=r"hopper.xml has no joints \['knee'\]"):
        Broken()
    assert _open_clients() == clients_before  # the half-built env disconnected its client


def test_unknown_foot_link_is_a_clear_error() -> None:
    class Broken(BulletWalkerEnv):
        model = WalkerModel(xml="hopper.xml", joints=("foot_joint",), torques=(1.0,), feet=("toe",), planar=True)

    with pytest.raises(ValueError, match=r"hopper.xml has no links \['toe'\]"):
        Broken()


def _open_clients() -> list[int]:
    return [c for c in range(64) if p.isConnected(physicsClientId=c)]


def test_bad_render_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="render_mode must be None or 'rgb_array'"):
        HopperBulletEnv(render_mode="human")
    with pytest.raises(ValueError, match="render size must be positive"):
        HopperBulletEnv(render_mode="rgb_array", width=0)


def test_wrong_action_shape_is_refused_and_out_of_range_actions_are_clipped() -> None:
    env = HopperBulletEnv()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(3))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must have shape \(3,\)"):
        env.step(np.zeros(4))
    with pytest.raises(ValueError, match="action must be finite"):
        env.step(np.array([0.0, np.nan, 0.0]))
    env.reset(seed=0)
    big = env.step(np.full(3, 5.0))[0]
    env.reset(seed=0)
    unit = env.step(np.ones(3))[0]
    env.close()
    np.testing.assert_array_equal(big, unit)


def test_planar_observation_reads_the_simulator_in_si_units() -> None:
    env = HopperBulletEnv()
    obs, _ = env.reset(seed=0)
    layout = observation_layout(HOPPER)
    names = [f.name for f in layout]
    assert names[:5] == ["height", "vel_x", "vel_z", "pitch", "pitch_rate"]
    assert obs[:5].tolist() == [0.0] * 5  # standing still at the load pose
    # joint angle normalized to its limits: thigh range is [-150°, 0°]
    thigh = p.getJointState(env.robot_id, 4, physicsClientId=env.physics_client)[0]
    lo, hi = -np.radians(150), 0.0
    assert obs[names.index("thigh_pos")] == pytest.approx(2 * (thigh - lo) / (hi - lo) - 1, abs=1e-6)
    p.resetJointState(env.robot_id, 0, 0.0, 1.5, physicsClientId=env.physics_client)  # slide x at 1.5 m/s
    obs, _, _, _, info = env.step(np.zeros(3))
    env.close()
    assert obs[1] == pytest.approx(1.5, abs=0.1)
    assert 1.0 < info["x_velocity"] < 1.6  # mean over the step; the legs' inertia tips the torso a little
    assert np.all(np.abs(obs) <= OBS_LIMIT)


def test_ant_heading_and_body_frame_velocity() -> None:
    env = AntBulletEnv()
    env.reset(seed=0)
    yaw = np.pi / 2  # facing +y: heading error to +x is −90°
    quat = p.getQuaternionFromEuler([0.0, 0.0, yaw])
    p.resetBasePositionAndOrientation(env.robot_id, [0, 0, 0.75], quat, physicsClientId=env.physics_client)
    p.resetBaseVelocity(env.robot_id, [0.0, 1.0, 0.0], [0, 0, 0], physicsClientId=env.physics_client)
    p.performCollisionDetection(physicsClientId=env.physics_client)
    obs = env._observe()
    env.close()
    names = [f.name for f in observation_layout(ANT) for _ in range(f.size)]
    assert obs[names.index("heading_sin")] == pytest.approx(-1.0, abs=1e-5)
    assert obs[names.index("heading_cos")] == pytest.approx(0.0, abs=1e-5)
    assert obs[names.index("vel_body")] == pytest.approx(1.0, abs=1e-5)  # moving straight ahead in body x


def test_control_period_is_four_physics_substeps() -> None:
    assert CONTROL_DT == pytest.approx(4 / 240)
