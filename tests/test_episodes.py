"""The one episode loop (trpo_tf.episodes): seeds, clipping, success, caps, and the same core under the
robot's ControlLoop (export.sim.SimulatedRobot) — real simulators, no TensorFlow needed."""

from __future__ import annotations

import numpy as np
import pytest

from export.control import ControlLoop
from export.sim import SimulatedRobot
from robots import EnvFactory
from trpo_tf.episodes import EpisodeEnv, run_episodes


def _swing(obs: np.ndarray) -> np.ndarray:
    """A deterministic Pendulum controller: torque against the angular velocity, scaled past the bounds."""
    return -5.0 * obs[:, 2:3]


def test_same_seeds_same_episodes_and_each_episode_has_its_own_seed():
    make = EnvFactory("Pendulum-v1")
    a = run_episodes(_swing, make, episodes=3, seed=4)
    b = run_episodes(_swing, make, episodes=3, seed=4)
    assert a["returns"] == b["returns"] and a["episodes"] == 3 and a["seed"] == 4
    assert len(set(a["returns"])) == 3  # seeds 4, 5, 6: three different starts
    assert a["mean_length"] == 200.0 and "success_rate" not in a
    shifted = run_episodes(_swing, make, episodes=2, seed=5)
    assert shifted["returns"] == a["returns"][1:]


def test_continuous_actions_are_clipped_to_the_action_space():
    make = EnvFactory("Pendulum-v1")
    huge = run_episodes(lambda o: np.full((len(o), 1), 100.0, np.float32), make, episodes=1, seed=0)
    bound = run_episodes(lambda o: np.full((len(o), 1), 2.0, np.float32), make, episodes=1, seed=0)
    assert huge["returns"] == bound["returns"]


def test_success_rate_where_the_task_reports_it_and_caps():
    result = run_episodes(lambda o: np.zeros((len(o), 4), np.float32), EnvFactory("robots/GripperReach-v0"),
                          episodes=2, seed=0)
    assert result["success_rate"] in (0.0, 0.5, 1.0)
    capped = run_episodes(_swing, EnvFactory("Pendulum-v1"), episodes=2, seed=0, max_steps=7)
    assert capped["mean_length"] == 7.0


def test_observe_sees_every_reset_and_step_and_can_stop_the_run():
    seen: list[int] = []

    def observe(env: EpisodeEnv) -> bool:
        seen.append(env.episode_length)
        return len(seen) < 12

    result = run_episodes(_swing, EnvFactory("Pendulum-v1"), episodes=5, seed=0, observe=observe)
    assert seen == list(range(12)) and result["episodes"] == 1 and result["mean_length"] == 11.0


def test_bad_episode_counts_are_value_errors():
    with pytest.raises(ValueError, match="episodes"):
        run_episodes(_swing, EnvFactory("Pendulum-v1"), episodes=0)


def test_the_control_loop_over_simulated_robot_meets_the_same_episodes():
    """run-onnx's path (ControlLoop → SimulatedRobot, an EpisodeEnv) and the plain loop agree exactly."""
    plain = run_episodes(_swing, EnvFactory("Pendulum-v1"), episodes=2, seed=3)
    robot = SimulatedRobot("Pendulum-v1", seed=3)
    returns = []
    try:
        for k in range(2):
            robot.start_episode(k)
            loop = ControlLoop(lambda o: np.clip(_swing(o[None])[0], -2.0, 2.0).astype(np.float32), robot, 1e9,
                               max_overruns=None, max_consecutive_overruns=None, spin_s=0.0)
            assert loop.run().reason in ("stopped", "completed")
            returns.append(robot.episode_return)
    finally:
        robot.close()
    assert returns == pytest.approx(plain["returns"], abs=1e-9)
