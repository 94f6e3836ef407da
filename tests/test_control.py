"""export/control.py: the fixed-rate ControlLoop with a real OnnxPolicy and an in-memory robot."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from export.control import ControlLoop, LoopReport, RobotInterface, realtime_scheduling
from export.runtime import OnnxPolicy
from export.builders import write_mlp

OBS, ACT = 11, 3


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mlp(tmp_path_factory.mktemp("ctl") / "policy.onnx", obs_dim=OBS, act_dim=ACT, bound=0.5)


class MemoryRobot:
    """A robot living in memory: a random walk observation, records every action it receives."""

    def __init__(
        self,
        episode_len: int | None = None,
        nan_at: int | None = None,
        fail_at: int | None = None,
        slow_ticks: set[int] | None = None,
        apply_sleep_s: float = 0.0,
        safe_state_error: bool = False,
    ):
        self.rng = np.random.default_rng(0)
        self.obs = np.zeros(OBS, np.float32)
        self.reads = 0
        self.actions: list[np.ndarray] = []
        self.safe_calls = 0
        self.episode_len, self.nan_at, self.fail_at = episode_len, nan_at, fail_at
        self.slow_ticks, self.apply_sleep_s = slow_ticks, apply_sleep_s
        self.safe_state_error = safe_state_error

    def read_observation(self) -> np.ndarray:
        if self.episode_len is not None and self.reads >= self.episode_len:
            raise StopIteration
        if self.fail_at is not None and self.reads == self.fail_at:
            raise RuntimeError("encoder bus timeout")
        self.reads += 1
        self.obs += self.rng.standard_normal(OBS).astype(np.float32) * 0.01
        if self.nan_at is not None and self.reads > self.nan_at:
            self.obs[2] = np.nan  # a broken sensor
        return self.obs

    def apply_action(self, action: np.ndarray) -> None:
        self.actions.append(action)
        if self.slow_ticks is None or len(self.actions) in self.slow_ticks:
            if self.apply_sleep_s:
                time.sleep(self.apply_sleep_s)

    def safe_state(self) -> None:
        self.safe_calls += 1
        if self.safe_state_error:
            raise OSError("brake relay not responding")


def test_memory_robot_satisfies_the_protocol() -> None:
    assert isinstance(MemoryRobot(), RobotInterface)


def _rt_priority() -> int | None:
    """SCHED_FIFO priority 10 when this process may use it (root / CAP_SYS_NICE), else None. Other
    engineers' jobs share the 2 cores: without it the scheduler can delay a tick by milliseconds."""
    try:
        with realtime_scheduling(10):
            return 10
    except (PermissionError, AttributeError):
        return None


def test_realtime_scheduling_is_restored() -> None:
    if _rt_priority() is None:
        pytest.skip("no permission for SCHED_FIFO here")
    before = os.sched_getscheduler(0)
    with realtime_scheduling(5):
        assert os.sched_getscheduler(0) == os.SCHED_FIFO and os.sched_getparam(0).sched_priority == 5
    assert os.sched_getscheduler(0) == before


def test_1khz_loop_keeps_its_schedule(policy_file: Path) -> None:
    """Correctness of the 1 kHz loop: every slot accounted for, absolute deadlines, actions in bounds. How
    many deadlines it meets is a speed figure (`trpo bench runtime`, docs/runtime.md), not asserted here:
    it failed at 0.979 on a loaded 2-core VM while the loop itself was right."""
    robot = MemoryRobot()
    loop = ControlLoop(OnnxPolicy(policy_file), robot, rate_hz=1000.0, realtime_priority=_rt_priority())
    report = loop.run(duration_s=1.5)
    assert report.reason == "completed" and not report.safe_state_called and robot.safe_calls == 0
    assert report.ticks + report.skipped_ticks == 1500  # every slot of the schedule is accounted for
    assert 0 <= report.missed_deadlines <= report.ticks and report.ticks > 0
    assert report.deadline_met_fraction == pytest.approx(1.0 - report.missed_deadlines / report.ticks)
    assert 1.45 < report.elapsed_s < 1.6  # absolute deadlines: no drift
    assert 0 < report.latency_p50_us <= report.latency_p99_us <= report.latency_max_us
    assert len(robot.actions) == report.ticks
    acts = np.stack(robot.actions)
    assert acts.shape == (report.ticks, ACT) and np.all(np.abs(acts) <= 0.5)
    d = report.to_dict()
    assert json.loads(json.dumps(d))["ticks"] == report.ticks and "error" not in d


def test_max_ticks_and_plain_callable_policy(policy_file: Path) -> None:
    policy = OnnxPolicy(policy_file)
    report = ControlLoop(lambda obs: policy.act(obs), MemoryRobot(), rate_hz=500).run(max_ticks=50)
    assert report.reason == "completed" and report.ticks == 50


def test_policy_error_calls_safe_state(policy_file: Path) -> None:
    robot = MemoryRobot(nan_at=20)
    report = ControlLoop(OnnxPolicy(policy_file, on_invalid="raise"), robot, rate_hz=1000).run(duration_s=1.0)
    assert report.reason.startswith("policy_error: ValueError: observation has NaN/Inf"), report.reason
    assert report.ticks == 20 and report.safe_state_called and robot.safe_calls == 1
    assert isinstance(report.error, ValueError)


def test_hold_policy_keeps_running_through_a_broken_sensor(policy_file: Path) -> None:
    robot = MemoryRobot(nan_at=20)
    policy = OnnxPolicy(policy_file, on_invalid="hold")
    report = ControlLoop(policy, robot, rate_hz=1000).run(max_ticks=40)
    assert report.reason == "completed" and robot.safe_calls == 0
    np.testing.assert_array_equal(robot.actions[-1], robot.actions[19])  # held since the sensor broke
    assert policy.n_invalid_inputs == 20


def test_robot_error_calls_safe_state(policy_file: Path) -> None:
    robot = MemoryRobot(fail_at=5)
    report = ControlLoop(OnnxPolicy(policy_file), robot, rate_hz=1000).run(duration_s=1.0)
    assert report.reason == "robot_error: read_observation raised RuntimeError: encoder bus timeout"
    assert report.ticks == 5 and robot.safe_calls == 1


def test_consecutive_overruns_call_safe_state(policy_file: Path) -> None:
    robot = MemoryRobot(apply_sleep_s=0.003)  # 3 ms of work in a 1 ms period
    loop = ControlLoop(OnnxPolicy(policy_file), robot, rate_hz=1000, max_consecutive_overruns=3)
    report = loop.run(duration_s=2.0)
    assert report.reason.startswith("overruns: 4 consecutive missed deadlines"), report.reason
    assert report.ticks == 4 and report.missed_deadlines == 4 and report.skipped_ticks >= 8
    assert report.safe_state_called and robot.safe_calls == 1
    assert report.latency_p50_us > 3000


def test_total_overruns_call_safe_state(policy_file: Path) -> None:
    # 200 Hz, not 1 kHz: the count under test is of the injected overruns only, and on a VM even SCHED_FIFO
    # woke up to 0.9 ms late (2026-12-04), one spontaneous miss at a 1 ms period. A 5 ms period has room for
    # that; the 12 ms sleeps still miss. (The 1 kHz schedule itself is tested above.)
    robot = MemoryRobot(slow_ticks={10, 20, 30, 40}, apply_sleep_s=0.012)
    rt = _rt_priority()  # without it a busy machine adds misses of its own
    loop = ControlLoop(OnnxPolicy(policy_file), robot, rate_hz=200, max_overruns=2, realtime_priority=rt)
    report = loop.run(duration_s=2.0)
    assert report.reason.startswith("overruns: 3 missed deadlines"), report.reason
    assert report.ticks <= 31 and (rt is None or report.ticks >= 30) and robot.safe_calls == 1


def test_robot_signals_the_end_with_stop_iteration(policy_file: Path) -> None:
    robot = MemoryRobot(episode_len=25)
    report = ControlLoop(OnnxPolicy(policy_file), robot, rate_hz=1000).run()
    assert report.reason == "stopped" and report.ticks == 25
    assert not report.safe_state_called and robot.safe_calls == 0


def test_request_stop_from_another_thread(policy_file: Path) -> None:
    loop = ControlLoop(OnnxPolicy(policy_file), MemoryRobot(), rate_hz=1000)
    timer = threading.Timer(0.1, loop.request_stop)
    timer.start()
    report = loop.run(duration_s=5.0)
    timer.join()
    # The stop ends the loop long before its 5 s (5,000 ticks); how many ticks fit into the 0.1 s depends on
    # the machine's load, so only "some, and far fewer than the duration's" is asserted (speed is benchmarked).
    assert report.reason == "stopped" and 0 < report.ticks < 2500


def test_keyboard_interrupt_makes_the_robot_safe_and_propagates(policy_file: Path) -> None:
    robot = MemoryRobot()

    def interrupted(obs: np.ndarray) -> np.ndarray:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ControlLoop(interrupted, robot, rate_hz=1000).run(max_ticks=10)
    assert robot.safe_calls == 1


def test_failing_safe_state_is_reported(policy_file: Path) -> None:
    robot = MemoryRobot(fail_at=3, safe_state_error=True)
    report = ControlLoop(OnnxPolicy(policy_file), robot, rate_hz=1000).run(max_ticks=10)
    assert report.reason.startswith("robot_error: read_observation raised RuntimeError")
    assert report.reason.endswith("; safe_state raised OSError: brake relay not responding")


class NoSafeState:
    def read_observation(self) -> np.ndarray:
        return np.zeros(OBS, np.float32)

    def apply_action(self, action: np.ndarray) -> None:
        pass


def test_argument_validation(policy_file: Path) -> None:
    policy, robot = OnnxPolicy(policy_file), MemoryRobot()
    with pytest.raises(ValueError, match="rate_hz must be a positive"):
        ControlLoop(policy, robot, rate_hz=0)
    with pytest.raises(ValueError, match="act\\(obs\\) method or be callable"):
        ControlLoop(42, robot, rate_hz=100)
    with pytest.raises(ValueError, match="missing method\\(s\\) \\['safe_state'\\]"):
        ControlLoop(policy, NoSafeState(), rate_hz=100)
    with pytest.raises(ValueError, match="max_overruns must be None or an integer"):
        ControlLoop(policy, robot, rate_hz=100, max_overruns=-1)
    with pytest.raises(ValueError, match=r"realtime_priority must be None or an integer in \[1, 99\]"):
        ControlLoop(policy, robot, rate_hz=100, realtime_priority=500)
    loop = ControlLoop(policy, robot, rate_hz=100)
    with pytest.raises(ValueError, match="duration_s"):
        loop.run(duration_s=float("inf"))
    with pytest.raises(ValueError, match="max_ticks"):
        loop.run(max_ticks=0)


def test_report_without_ticks() -> None:
    report = LoopReport("stopped", 0, 0, 0, 1000.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False)
    assert report.deadline_met_fraction == 1.0 and report.to_dict()["reason"] == "stopped"
