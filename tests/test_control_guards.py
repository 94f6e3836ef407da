"""ControlLoop's deployment guards (rate limit, blend-in, safe state on exit) in the simulated loop:
a real OnnxPolicy driving a real MuJoCo hopper through export/sim.py's SimulatedRobot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from export.control import ControlLoop
from export.runtime import OnnxPolicy
from export.sim import SimulatedRobot
from export.builders import write_mlp


class RecordingRobot(SimulatedRobot):
    """The simulated hopper, keeping every command it is sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: list[np.ndarray] = []

    def apply_action(self, action: Any) -> None:
        self.commands.append(np.array(action, copy=True))
        super().apply_action(action)


class Recorded:
    """A policy wrapper keeping the raw actions, so the guarded commands can be checked against them."""

    def __init__(self, policy: Any) -> None:
        self.policy, self.raw = policy, []

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        a = self.policy(obs)
        self.raw.append(np.array(a, copy=True))
        return a


@pytest.fixture(scope="module")
def onnx_policy(tmp_path_factory: pytest.TempPathFactory) -> OnnxPolicy:
    path = write_mlp(tmp_path_factory.mktemp("guards") / "p.onnx", obs_dim=11, act_dim=3, bound=1.0)
    return OnnxPolicy(path)


def run(policy: Any, ticks: int = 60, **guards: Any) -> tuple[RecordingRobot, Any]:
    robot = RecordingRobot("hopper", seed=0)
    robot.start_episode(0)
    report = ControlLoop(policy, robot, rate_hz=1e9, spin_s=0.0, max_consecutive_overruns=None,
                         **guards).run(max_ticks=ticks)
    robot.close()
    return robot, report


def test_rate_limit_bounds_every_change(onnx_policy: OnnxPolicy) -> None:
    flip = iter(range(10**6))

    def bang_bang(obs: np.ndarray) -> np.ndarray:  # the worst case: full swings every tick
        return np.full(3, 1.0 if next(flip) % 2 else -1.0, np.float32)

    robot, report = run(bang_bang, ticks=40, max_action_delta=0.1, default_action=np.zeros(3))
    steps = np.diff(np.array([np.zeros(3)] + robot.commands), axis=0)
    assert np.abs(steps).max() <= 0.1 + 1e-6
    assert report.rate_limited_ticks == len(robot.commands) and report.reason in ("completed", "stopped")
    # per-element limits, on a real policy
    robot, _ = run(Recorded(onnx_policy.act), max_action_delta=[0.05, 0.2, 0.5])
    steps = np.abs(np.diff(np.array(robot.commands), axis=0))
    assert (steps <= np.array([0.05, 0.2, 0.5]) + 1e-6).all()


def test_blend_in_moves_from_the_default_to_the_policy_over_n_steps(onnx_policy: OnnxPolicy) -> None:
    default = np.array([0.3, -0.2, 0.1])
    policy = Recorded(onnx_policy.act)
    robot, _ = run(policy, ticks=20, blend_in_steps=8, default_action=default)
    for i, (cmd, raw) in enumerate(zip(robot.commands, policy.raw)):
        w = min(1.0, (i + 1) / 8)
        assert np.allclose(cmd, default + w * (raw - default), atol=1e-6), i
    assert np.array_equal(robot.commands[10], policy.raw[10])  # after N steps: the policy's own action


def test_guards_never_leave_the_action_bounds(onnx_policy: OnnxPolicy) -> None:
    robot, report = run(onnx_policy, ticks=50, blend_in_steps=5, default_action=np.full(3, 0.9),
                        max_action_delta=0.3)
    assert robot.n_rejected_actions == 0 and report.reason in ("completed", "stopped")
    assert np.abs(np.array(robot.commands)).max() <= 1.0


def test_safe_state_on_exit_ends_every_run(onnx_policy: OnnxPolicy) -> None:
    robot, report = run(onnx_policy, ticks=5, safe_state_on_exit=True)
    assert report.reason == "completed" and report.safe_state_called and robot.halted
    robot, report = run(onnx_policy, ticks=5)
    assert not report.safe_state_called and not robot.halted


@pytest.mark.parametrize("kwargs, words", [
    ({"blend_in_steps": 5}, "needs default_action"),
    ({"max_action_delta": 0.0}, "must be > 0"),
    ({"max_action_delta": [0.1, float("nan")]}, "finite"),
    ({"blend_in_steps": -1, "default_action": [0.0]}, "integer >= 0"),
])
def test_bad_guard_settings_are_refused(onnx_policy: OnnxPolicy, kwargs: dict, words: str) -> None:
    robot = RecordingRobot("hopper")
    with pytest.raises(ValueError, match=words):
        ControlLoop(onnx_policy, robot, rate_hz=100, **kwargs)
    robot.close()


def test_a_discrete_policy_with_guards_stops_as_a_policy_error() -> None:
    robot = RecordingRobot("cartpole")
    robot.start_episode(0)
    report = ControlLoop(lambda obs: 1, robot, rate_hz=1e9, spin_s=0.0, max_action_delta=0.5).run(max_ticks=3)
    robot.close()
    assert report.reason.startswith("policy_error") and "continuous action" in report.reason
    assert report.safe_state_called
