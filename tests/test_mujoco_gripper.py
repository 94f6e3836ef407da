"""Tests for robots/mujoco_gripper.py: the real MuJoCo scene, both tasks, the scripted controller."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")  # headless rendering; must precede mujoco's GL setup

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import robots
from robots.mujoco_gripper import (
    LIFT_SUCCESS,
    MAX_STEP,
    PICK_LIFT_LAYOUT,
    REACH_LAYOUT,
    GripperEnv,
    scripted_action,
)
from robots.registry import layout_slices

REACH_ID = "robots/GripperReach-v0"
PICK_ID = "robots/GripperPickLift-v0"
IDS = [REACH_ID, PICK_ID]


def _run_episode(env: gym.Env, seed: int, policy) -> tuple[dict, bool]:
    """One full episode; returns the last info and whether is_success was ever true."""
    obs, _ = env.reset(seed=seed)
    ever = False
    while True:
        obs, _, terminated, truncated, info = env.step(policy(obs))
        ever = ever or bool(info["is_success"])
        if terminated or truncated:
            return info, ever


@pytest.mark.parametrize("gym_id", IDS)
def test_check_env_passes(gym_id: str) -> None:
    env = gym.make(gym_id)
    check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("gym_id", IDS)
def test_registry_matches_env(gym_id: str) -> None:
    spec = robots.get_task(gym_id)
    env = gym.make(gym_id)
    assert spec.family == "gripper" and spec.simulator == "mujoco"
    assert env.observation_space.shape == (spec.obs_dim,)
    assert env.action_space.shape == (spec.act_dim,)
    assert spec.control_hz == pytest.approx(1.0 / (env.unwrapped.model.opt.timestep * 20))
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32
    from trpo_tf.config import TRPOConfig

    config = TRPOConfig().updated(robots.load_preset(gym_id))  # a valid preset (values are tuned in docs)
    assert config.normalize_obs is True
    env.close()


@pytest.mark.parametrize("gym_id", IDS)
def test_same_seed_same_first_100_observations(gym_id: str) -> None:
    def rollout(seed: int) -> np.ndarray:
        env = gym.make(gym_id)
        actions = np.random.default_rng(123).uniform(-1, 1, (99, 4)).astype(np.float32)
        obs, _ = env.reset(seed=seed)
        out = [obs]
        for a in actions:
            obs, *_ = env.step(a)
            out.append(obs)
        env.close()
        return np.stack(out)

    first, again, other = rollout(7), rollout(7), rollout(8)
    assert first.shape[0] == 100
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first[0], other[0])


def test_instances_share_no_state() -> None:
    """Interleaving two envs gives the same observations as running one alone."""
    a, b, alone = (GripperEnv("pick_lift") for _ in range(3))
    obs_a, _ = a.reset(seed=3)
    b.reset(seed=4)
    obs_alone, _ = alone.reset(seed=3)
    np.testing.assert_array_equal(obs_a, obs_alone)
    rng = np.random.default_rng(0)
    for _ in range(20):
        act = rng.uniform(-1, 1, 4)
        b.step(-act)
        np.testing.assert_array_equal(a.step(act)[0], alone.step(act)[0])


@pytest.mark.parametrize("gym_id", IDS)
def test_render_rgb_array_headless(gym_id: str) -> None:
    env = gym.make(gym_id, render_mode="rgb_array", width=160, height=120)
    env.reset(seed=0)
    frame = env.render()
    env.step(env.action_space.sample())
    frame2 = env.render()
    env.close()
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
    assert frame.std() > 10  # a real picture, not a blank buffer
    assert frame2.shape == frame.shape


@pytest.mark.parametrize("gym_id", IDS)
def test_scripted_controller_succeeds(gym_id: str) -> None:
    env = gym.make(gym_id)
    finals = [bool(_run_episode(env, seed, scripted_action)[0]["is_success"]) for seed in range(20)]
    env.close()
    assert np.mean(finals) >= 0.95, f"scripted success {np.mean(finals):.2f} on {gym_id}"


def test_scripted_pick_lift_really_holds_the_cube() -> None:
    env = gym.make(PICK_ID)
    info, _ = _run_episode(env, 11, scripted_action)
    assert info["grasped"] and info["lift_height"] >= LIFT_SUCCESS
    cube_z = env.unwrapped.cube_pos[2]
    grip_z = env.unwrapped.grip_pos[2]
    assert abs(cube_z - grip_z) < 0.01  # the cube rides between the pads
    env.close()


def test_random_policy_rarely_succeeds_on_pick_lift() -> None:
    env = gym.make(PICK_ID)
    env.action_space.seed(0)
    results = [_run_episode(env, 100 + s, lambda _obs: env.action_space.sample()) for s in range(20)]
    env.close()
    assert np.mean([bool(info["is_success"]) for info, _ in results]) <= 0.05
    assert np.mean([ever for _, ever in results]) <= 0.1


def test_setpoint_is_clamped_to_the_workspace() -> None:
    env = GripperEnv("reach")
    env.reset(seed=0)
    low, high = env.workspace
    before = env.setpoint
    env.step(np.array([50.0, -50.0, 0.0, 0.0]))  # out-of-bounds actions saturate at one step
    np.testing.assert_allclose(env.setpoint - before, [MAX_STEP, -MAX_STEP, 0.0], atol=1e-12)
    for _ in range(30):
        env.step(np.array([1.0, -1.0, -1.0, 1.0]))
    np.testing.assert_allclose(env.setpoint, [high[0], low[1], low[2]])
    grip = env.grip_pos
    assert np.all(grip >= low - 0.005) and np.all(grip <= high + 0.005)
    for _ in range(30):
        env.step(np.array([-1.0, 1.0, 1.0, -1.0]))
    np.testing.assert_allclose(env.setpoint, [low[0], high[1], high[2]])


def test_bad_actions_and_tasks_raise_clear_errors() -> None:
    env = GripperEnv("reach")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="4 elements"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0, 0, 0]))
    with pytest.raises(ValueError, match="task must be one of"):
        GripperEnv("push")
    with pytest.raises(ValueError, match="obs must have shape"):
        scripted_action(np.zeros(5))


def test_reach_reward_terms_in_info() -> None:
    env = GripperEnv("reach")
    obs, _ = env.reset(seed=2)
    idx = layout_slices(REACH_LAYOUT)
    obs, reward, _, _, info = env.step(np.zeros(4))
    dist = float(np.linalg.norm(obs[idx["goal_rel_grip"]]))
    assert info["distance"] == pytest.approx(dist, abs=1e-5)
    assert info["reward_distance"] == pytest.approx(-dist, abs=1e-5)
    assert reward == pytest.approx(info["reward_distance"] + info["reward_success"])
    for _ in range(49):  # drive to the goal: the success bonus appears
        obs, reward, _, _, info = env.step(scripted_action(obs))
    assert info["is_success"] and info["reward_success"] == 1.0 and info["distance"] < 0.02


def test_pick_lift_reward_terms_in_info() -> None:
    env = GripperEnv("pick_lift")
    obs, _ = env.reset(seed=5)
    idx = layout_slices(PICK_LIFT_LAYOUT)
    terms = ("reward_reach", "reward_grasp", "reward_lift", "reward_hold")
    seen_grasp = False
    for _ in range(60):
        obs, reward, _, _, info = env.step(scripted_action(obs))
        assert reward == pytest.approx(sum(info[t] for t in terms))
        dist = float(np.linalg.norm(obs[idx["cube_rel_grip"]]))
        assert info["reward_reach"] == pytest.approx(1.0 - np.tanh(10.0 * dist), abs=1e-4)
        if info["grasped"]:
            seen_grasp = True
            assert info["reward_grasp"] == 0.5
        else:
            assert info["reward_grasp"] == info["reward_lift"] == info["reward_hold"] == 0.0
    assert seen_grasp and info["is_success"] and info["reward_hold"] == 1.0
    assert reward == pytest.approx(4.5, abs=0.05)  # every term near its maximum while held at the goal


def test_grasp_is_friction_it_survives_shaking_and_opening_drops_the_cube() -> None:
    env = GripperEnv("pick_lift")
    obs, _ = env.reset(seed=4)
    for _ in range(30):
        obs, _, _, _, info = env.step(scripted_action(obs))
    assert info["is_success"]
    for t in range(20):  # full-speed side to side, reversing every 0.2 s
        sign = 1.0 if (t // 5) % 2 == 0 else -1.0
        obs, _, _, _, info = env.step(np.array([sign, -sign, 0.0, 1.0]))
    assert info["grasped"] and info["lift_height"] > LIFT_SUCCESS
    for _ in range(15):  # open and stay put: the cube falls back to the table
        obs, _, _, _, info = env.step(np.array([0.0, 0.0, 0.0, -1.0]))
    assert not info["grasped"] and info["lift_height"] < 0.005 and not info["is_success"]
