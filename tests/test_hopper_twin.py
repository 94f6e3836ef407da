"""The twin hopper: one robot file, one observation/action contract, MuJoCo and PyBullet."""

from __future__ import annotations

import os
import warnings

import gymnasium
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import robots
from robots.hopper_twin import TWIN_XML

TWINS = ("hopper-twin", "hopper-twin-bullet")


def make_env(task: str, randomization=None):
    """The task's env as the app builds it (robots.make_env), randomized as asked."""
    return robots.make_env(task, randomization=randomization)


def test_the_twins_share_spaces_layout_rate_and_point_at_each_other() -> None:
    a, b = (robots.get_task(t) for t in TWINS)
    assert (a.simulator, b.simulator) == ("mujoco", "pybullet")
    assert (a.twin, b.twin) == (b.name, a.name)
    assert a.obs_layout == b.obs_layout == robots.get_task("hopper").obs_layout
    assert (a.obs_dim, a.act_dim, a.control_hz) == (b.obs_dim, b.act_dim, b.control_hz) == (11, 3, 125.0)
    envs = [make_env(t) for t in TWINS]
    assert envs[0].observation_space == envs[1].observation_space
    assert envs[0].action_space == envs[1].action_space
    assert envs[0].spec.max_episode_steps == envs[1].spec.max_episode_steps == 1000
    for e in envs:
        e.close()


def test_the_twin_file_is_hopper_v5_without_armature() -> None:
    """Same masses, centres of mass, geometry and mass matrix as Hopper-v5's model with armature 0."""
    gym_xml = os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets", "hopper.xml")
    ours, theirs = mujoco.MjModel.from_xml_path(str(TWIN_XML)), mujoco.MjModel.from_xml_path(gym_xml)
    theirs.dof_armature[:] = 0.0
    datas = [mujoco.MjData(m) for m in (ours, theirs)]
    matrices = []
    for m, d in zip((ours, theirs), datas):
        mujoco.mj_forward(m, d)
        full = np.zeros((m.nv, m.nv))
        mujoco.mj_fullM(m, d, full)  # MuJoCo 4 signature
        matrices.append(full)
    assert np.allclose(ours.body_mass, theirs.body_mass)
    assert np.allclose(datas[0].xipos, datas[1].xipos) and np.allclose(datas[0].geom_xpos, datas[1].geom_xpos)
    assert np.allclose(matrices[0], matrices[1], atol=1e-9)
    assert np.array_equal(ours.qpos0, theirs.qpos0) and np.array_equal(ours.dof_damping, theirs.dof_damping)


def test_bullet_twin_passes_gymnasiums_checker() -> None:
    env = make_env("hopper-twin-bullet")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    env.close()
    assert all("infinity" in str(w.message) for w in caught)  # Hopper-v5's unbounded Box, as gymnasium's


def test_both_simulate_and_a_scripted_policy_moves_both_alike() -> None:
    """The same open-loop actions from the same seeded start: both stay in the air-and-land regime the
    policy meets first, and their joint motion agrees closely for the first steps (before contact)."""
    envs = [make_env(t) for t in TWINS]
    runs = []
    for env in envs:
        obs, _ = env.reset(seed=0)
        traj = [obs]
        for t in range(6):
            obs, reward, terminated, _, info = env.step(np.array([-0.2, -0.3, 0.5], np.float32))  # into the joint ranges
            traj.append(obs)
            assert np.isfinite(obs).all() and np.isfinite(reward)
        runs.append(np.array(traj))
        env.close()
    mj, pb = runs
    assert np.array_equal(mj[0], pb[0])  # the same seeded start state
    moved = np.abs(mj[-1] - mj[0])[2:5]
    assert (moved > 0.01).all()  # every leg joint moved
    assert np.allclose(mj[-1][2:5], pb[-1][2:5], atol=0.35 * moved.max())  # and the twin moved alike
    assert np.sign(mj[-1][2:5] - mj[0][2:5]).tolist() == np.sign(pb[-1][2:5] - pb[0][2:5]).tolist()


def test_one_policy_runs_on_both_through_the_same_code() -> None:
    """A closed-loop PD controller on the observation contract runs unchanged on both twins."""
    def pd(obs: np.ndarray) -> np.ndarray:
        return np.clip(1.0 * (np.array([-0.3, -0.6, 0.0]) - obs[2:5]) - 0.05 * obs[7:10], -1, 1).astype(np.float32)

    for task in TWINS:
        env = make_env(task)
        obs, _ = env.reset(seed=1)
        for _ in range(10):
            obs, _, terminated, _, info = env.step(pd(obs))
            if terminated:
                break
        assert info["x_position"] != 0.0 and np.isfinite(obs).all()
        env.close()


@pytest.mark.parametrize("task", TWINS)
def test_seeded_resets_replay(task: str) -> None:
    env = make_env(task)
    first = env.reset(seed=4)[0]
    env.step(env.action_space.sample())
    assert np.array_equal(env.reset(seed=4)[0], first)
    env.close()
