"""export/sim.py: exported ONNX files drive the real simulators through the robot-side ControlLoop."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from export.control import RobotInterface
from export.sim import SimulatedRobot, run_onnx
from trained_runs import exported_run
from trpo_tf import Policy
from robots import EnvFactory
from trpo_tf.episodes import run_episodes

TASKS = ["cartpole", "inverted-pendulum", "hopper-bullet"]  # classic, MuJoCo, PyBullet
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Policy, Path]]:
    return {task: (policy, result.path) for task in TASKS
            for policy, result in [exported_run(task, tmp_path_factory)]}


def _tf_act(policy: Policy):
    """The TensorFlow policy itself (``tf_action``), as ``evaluate`` calls it: [1, obs_dim] → actions."""
    return lambda obs: policy.tf_action(tf.constant(obs)).numpy()


@pytest.mark.parametrize("task", TASKS)
def test_onnx_closed_loop_return_equals_tensorflow_evaluation(exported, task: str) -> None:
    policy, path = exported[task]
    onnx_run = run_onnx(path, episodes=4, seed=7)
    tf_run = run_episodes(_tf_act(policy), EnvFactory(policy.info.gym_id, policy.info.env_kwargs), episodes=4,
                          seed=7)
    assert onnx_run["task"] == task and onnx_run["episodes"] == 4 and onnx_run["seed"] == 7
    # ONNX and TF actions differ by ~1e-7; where a robot is about to fall that can tip the fall one step
    # earlier or later (seen on hopper-bullet: 30 vs 31 steps in one of four episodes, the other three equal
    # to 1e-7). So: most episodes equal, the rest at most a step apart; a wrong export differs everywhere.
    equal = np.isclose(onnx_run["returns"], tf_run["returns"], rtol=0.01)
    assert equal.sum() >= 3, (onnx_run["returns"], tf_run["returns"])
    assert abs(onnx_run["mean_length"] - tf_run["mean_length"]) <= (4 - equal.sum()) / 4
    assert onnx_run["mean_return"] == pytest.approx(tf_run["mean_return"], rel=0.05)
    assert onnx_run["steps"] == round(4 * onnx_run["mean_length"])  # its own episodes
    assert 0 < onnx_run["latency_p50_us"] <= onnx_run["latency_p99_us"] <= onnx_run["latency_max_us"]
    assert onnx_run["steps_per_s"] > 0 and "deadline_met_fraction" not in onnx_run
    json.dumps(onnx_run)  # the CLI prints it with --json


def test_task_may_be_named_by_gym_id_and_must_fit(exported) -> None:
    _, path = exported["cartpole"]
    assert run_onnx(path, task="CartPole-v1", episodes=1)["task"] == "cartpole"
    with pytest.raises(ValueError, match="does not fit task 'inverted-pendulum'"):
        run_onnx(path, task="inverted-pendulum", episodes=1)  # obs_dim 4 too, but continuous actions
    with pytest.raises(KeyError, match="unknown task 'no-such-task'"):
        run_onnx(path, task="no-such-task")
    with pytest.raises(ValueError, match="episodes must be an integer >= 1"):
        run_onnx(path, episodes=0)


def test_throttled_run_keeps_the_rate(exported) -> None:
    _, path = exported["cartpole"]
    result = run_onnx(path, episodes=1, rate_hz=500.0, max_steps=50)
    assert result["steps"] <= 50 and result["rate_hz"] == 500.0
    assert result["steps_per_s"] <= 500.0 * 1.05
    assert 0.0 <= result["deadline_met_fraction"] <= 1.0


def test_simulated_robot_is_a_robot_interface_with_evaluate_seeds() -> None:
    robot = SimulatedRobot("inverted-pendulum", seed=40)
    try:
        assert isinstance(robot, RobotInterface)
        with pytest.raises(StopIteration):
            robot.read_observation()  # no episode yet
        obs = robot.start_episode(2)
        reference = gym.make("InvertedPendulum-v5")
        np.testing.assert_array_equal(obs, np.asarray(reference.reset(seed=42)[0], np.float32))
        first = robot.read_observation()
        first[:] = 99.0  # a copy: the caller cannot change the robot's state
        assert robot.read_observation()[0] != 99.0
        robot.apply_action(np.array([0.5], np.float32))
        want = reference.step(np.array([0.5], np.float32))[0]
        np.testing.assert_array_equal(robot.read_observation(), np.asarray(want, np.float32))
        reference.close()
        for bad in (np.array([3.5], np.float32), np.array([np.nan], np.float32), np.zeros(2, np.float32),
                    np.array([1], np.int64)):
            with pytest.raises(ValueError, match="action must be 1 finite floats"):
                robot.apply_action(bad)
        assert robot.n_rejected_actions == 4 and robot.episode_length == 1
        robot.safe_state()
        with pytest.raises(StopIteration):
            robot.read_observation()
        robot.start_episode(0)
        while not robot.episode_over:  # push hard one way: the pole falls, the episode ends
            robot.apply_action(np.array([3.0], np.float32))
        assert robot.terminated and 0 < robot.episode_length < 1000 and robot.episode_return > 0
        with pytest.raises(StopIteration):
            robot.read_observation()
    finally:
        robot.close()


def test_simulated_robot_checks_discrete_actions() -> None:
    robot = SimulatedRobot("CartPole-v1")
    try:
        robot.start_episode(0)
        for bad in (2, -1, 1.0, True, np.array([1])):
            with pytest.raises(ValueError, match=r"integer in \[0, 2\)"):
                robot.apply_action(bad)
        robot.apply_action(np.int64(1))
        robot.apply_action(0)
        assert robot.episode_length == 2 and robot.n_rejected_actions == 5
    finally:
        robot.close()


def test_sim_runtime_runs_without_tensorflow(exported) -> None:
    _, path = exported["hopper-bullet"]
    code = (
        "import sys, json\n"
        "from export.sim import run_onnx\n"
        f"r = run_onnx({str(path)!r}, episodes=1, seed=3)\n"
        "assert 'tensorflow' not in sys.modules, 'the robot-side path imported TensorFlow'\n"
        "print(json.dumps(r))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["episodes"] == 1 and result["gym_id"] == "robots/HopperBullet-v0"
