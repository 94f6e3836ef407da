"""The four PyBullet locomotion tasks, on the real simulator: API conformance, seeding, rendering,
falls, reward terms, isolation between instances and subprocess vector envs."""

from __future__ import annotations

import functools
import warnings

import gymnasium
import numpy as np
import pybullet as p
import pytest
from gymnasium.utils.env_checker import check_env

import robots
from robots.bullet_locomotion import MAX_EPISODE_STEPS

TASKS = ["hopper-bullet", "walker2d-bullet", "half-cheetah-bullet", "ant-bullet"]
REWARD_TERMS = ("reward_progress", "reward_alive", "reward_electricity", "reward_joints_at_limit")


def make(task: str, **kwargs) -> gymnasium.Env:
    return gymnasium.make(robots.get_task(task).gym_id, **kwargs)


def rollout(env: gymnasium.Env, actions: np.ndarray, seed: int) -> np.ndarray:
    """Observations after reset(seed) and each action; an episode end resets without a seed."""
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, _, terminated, truncated, _ = env.step(a)
        out.append(obs)
        if terminated or truncated:
            obs, _ = env.reset()
            out.append(obs)
    return np.array(out)


@pytest.mark.parametrize("task", TASKS)
def test_check_env_passes_without_warnings(task: str) -> None:
    env = make(task)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    env.close()
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("task", TASKS)
def test_spec_matches_env_and_observations_stay_in_space(task: str) -> None:
    spec = robots.get_task(task)
    env = make(task)
    assert env.observation_space.shape == (spec.obs_dim,)
    assert env.action_space.shape == (spec.act_dim,)
    assert env.observation_space.dtype == np.float32
    assert spec.control_hz == pytest.approx(60.0)
    assert env.spec.max_episode_steps == MAX_EPISODE_STEPS
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    for _ in range(300):
        assert env.observation_space.contains(obs)
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert np.isfinite(reward)
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_gives_identical_first_100_observations(task: str) -> None:
    actions = np.random.default_rng(0).uniform(-1, 1, (100, robots.get_task(task).act_dim))
    first, second = make(task), make(task)
    a = rollout(first, actions, seed=7)
    b = rollout(second, actions, seed=7)
    again = rollout(first, actions, seed=7)  # a used env, reset with the same seed, repeats itself
    other = rollout(second, actions, seed=8)
    first.close()
    second.close()
    assert len(a) >= 101
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, again)
    assert not np.array_equal(a[0], other[0])


def robot_pixels(frame: np.ndarray) -> int:
    """Pixels of the robot's saturated link colours (the floor is white and pale blue)."""
    f = frame.astype(int)
    return int((f.max(axis=2) - f.min(axis=2) > 120).sum())


@pytest.mark.parametrize("task", ["hopper-bullet", "ant-bullet"])
def test_render_returns_rgb_frame_following_the_torso(task: str) -> None:
    env = make(task, render_mode="rgb_array", width=160, height=120)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (120, 160, 3)
    assert frame.dtype == np.uint8
    assert robot_pixels(frame) > 50
    inner = env.unwrapped
    if task == "hopper-bullet":  # 20 m along the rail, then the camera must have come along
        p.resetJointState(inner.robot_id, 0, 20.0, 0.0, physicsClientId=inner.physics_client)
    else:
        p.resetBasePositionAndOrientation(
            inner.robot_id, [20, 0, 0.75], [0, 0, 0, 1], physicsClientId=inner.physics_client
        )
    assert robot_pixels(env.render()) > 50
    env.close()
    plain = make(task)
    plain.reset(seed=0)
    assert plain.render() is None  # no render_mode: no frame
    plain.close()


def test_hopper_falls_without_torque_and_the_episode_terminates() -> None:
    env = make("hopper-bullet")
    env.reset(seed=0)
    for step in range(200):
        _, _, terminated, truncated, info = env.step(np.zeros(3))
        if terminated:
            break
    env.close()
    assert terminated and not truncated and step < 100
    assert info["reward_alive"] == -1.0


@pytest.mark.parametrize("task", ["hopper-bullet", "walker2d-bullet"])
def test_planar_robot_started_tilted_terminates(task: str) -> None:
    env = make(task)
    env.reset(seed=0)
    inner = env.unwrapped
    p.resetJointState(inner.robot_id, 2, 1.3, 0.0, physicsClientId=inner.physics_client)  # root pitch hinge
    obs, _, terminated, _, info = env.step(np.zeros(robots.get_task(task).act_dim))
    env.close()
    assert terminated
    assert obs[3] > 1.0  # the pitch field
    assert info["reward_alive"] == -1.0


def test_ant_upside_down_terminates() -> None:
    env = make("ant-bullet")
    env.reset(seed=0)
    inner = env.unwrapped
    upside_down = p.getQuaternionFromEuler([np.pi, 0.0, 0.0])
    client = inner.physics_client
    p.resetBasePositionAndOrientation(inner.robot_id, [0, 0, 0.3], upside_down, physicsClientId=client)
    terminated = False
    for _ in range(30):
        _, _, terminated, _, info = env.step(np.zeros(8))
        if terminated:
            break
    env.close()
    assert terminated and info["reward_alive"] == -1.0


def test_ant_standing_still_does_not_terminate() -> None:
    env = make("ant-bullet")
    env.reset(seed=0)
    results = [env.step(np.zeros(8))[2] for _ in range(200)]
    env.close()
    assert not any(results)


def test_half_cheetah_never_terminates_but_a_collapse_costs_the_alive_bonus() -> None:
    env = make("half-cheetah-bullet")
    env.reset(seed=0)
    alive = []
    for step in range(MAX_EPISODE_STEPS):
        _, _, terminated, truncated, info = env.step(np.zeros(6))  # limp: it sinks onto its shins
        alive.append(info["reward_alive"])
        assert not terminated
        if truncated:
            break
    env.close()
    assert truncated and step == MAX_EPISODE_STEPS - 1
    assert alive[0] == 1.0 and alive[-1] == -1.0


@pytest.mark.parametrize("task", TASKS)
def test_reward_is_the_sum_of_its_terms_in_info(task: str) -> None:
    env = make(task)
    env.action_space.seed(1)
    env.reset(seed=1)
    for _ in range(20):
        _, reward, terminated, _, info = env.step(env.action_space.sample())
        assert set(REWARD_TERMS) <= set(info)
        assert reward == pytest.approx(sum(info[k] for k in REWARD_TERMS))
        assert info["reward_electricity"] < 0.0 and info["reward_joints_at_limit"] <= 0.0
        assert info["reward_progress"] == pytest.approx(info["x_velocity"])
        if terminated:
            break
    env.close()


def test_forward_motion_is_rewarded_as_progress() -> None:
    env = make("ant-bullet")
    env.reset(seed=0)
    inner = env.unwrapped
    p.resetBaseVelocity(inner.robot_id, [2.0, 0, 0], [0, 0, 0], physicsClientId=inner.physics_client)
    _, _, _, _, info = env.step(np.zeros(8))
    env.close()
    assert 1.0 < info["reward_progress"] < 2.5  # slides forward at ~2 m/s, friction slows it


def test_two_instances_in_one_process_do_not_interfere() -> None:
    actions = np.random.default_rng(3).uniform(-1, 1, (30, 6))
    alone = make("walker2d-bullet")
    reference = rollout(alone, actions, seed=3)
    alone.close()

    busy, quiet = make("walker2d-bullet"), make("walker2d-bullet")
    busy.reset(seed=99)
    observed = [quiet.reset(seed=3)[0]]
    q = quiet.unwrapped

    def quiet_state() -> list:
        joints = range(p.getNumJoints(q.robot_id, physicsClientId=q.physics_client))
        return p.getJointStates(q.robot_id, list(joints), physicsClientId=q.physics_client)

    for a in actions:
        before = quiet_state()
        for _ in range(3):
            busy.step(-a)
        assert quiet_state() == before  # stepping one env leaves the other's simulation untouched
        obs, _, terminated, truncated, _ = quiet.step(a)
        observed.append(obs)
        if terminated or truncated:
            observed.append(quiet.reset()[0])
    busy.close()
    quiet.close()
    np.testing.assert_array_equal(np.array(observed), reference)


def test_close_disconnects_and_is_idempotent() -> None:
    env = make("hopper-bullet")
    client = env.unwrapped.physics_client
    env.close()
    env.close()
    assert not p.isConnected(physicsClientId=client)
    with pytest.raises(RuntimeError, match="closed"):
        env.unwrapped.reset()


@pytest.mark.parametrize("context", [None, "spawn"])
def test_async_vector_env_of_two_steps_in_subprocesses(context: str | None) -> None:
    gym_id = "robots:" + robots.get_task("hopper-bullet").gym_id  # "module:" lets a spawned child import it
    envs = gymnasium.vector.AsyncVectorEnv([functools.partial(gymnasium.make, gym_id)] * 2, context=context)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (2, 12)
    assert not np.array_equal(obs[0], obs[1])  # the sub-envs are seeded 0 and 1
    envs.action_space.seed(0)
    for _ in range(30):
        obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
    envs.close()
    assert obs.shape == (2, 12) and reward.shape == (2,)
    assert np.isfinite(obs).all() and "reward_progress" in info


def test_trpo_trains_briefly_on_hopper_bullet_and_the_policy_drives_the_env(tmp_path) -> None:
    import trpo_tf  # heavy (TensorFlow): imported only here

    overrides = {"total_steps": 4096, "n_envs": 2, "n_steps": 1024, "vector_env": "sync", "eval_episodes": 2,
                 "jit_compile": False}  # XLA compile time would dominate 2 iterations
    config = trpo_tf.config_for_task("hopper-bullet", overrides)
    assert config.max_kl == robots.load_preset("hopper-bullet")["max_kl"]  # the preset was applied
    result = trpo_tf.train(config, tmp_path / "run", progress=False)
    last = result["last"]
    assert last["iteration"] == 2 and last["env_steps"] == 4096
    assert last["episodes"] > 0 and np.isfinite(last["episode_return_mean"])
    assert 0.0 <= last["kl"] <= 1.5 * config.max_kl
    assert np.isfinite(result["eval"]["mean_return"])

    policy = trpo_tf.load_policy(tmp_path / "run")
    env = make("hopper-bullet")
    obs, _ = env.reset(seed=0)
    for _ in range(20):
        action = policy.act(obs)
        assert action.shape == (3,) and np.all(np.abs(action) <= 1.0)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    env.close()
