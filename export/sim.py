"""A simulator standing in for the robot: drive any ``robots`` task with an exported ONNX file.

TensorFlow-free, like :mod:`export.runtime`: numpy, onnxruntime, gymnasium and the simulators only.
:class:`SimulatedRobot` implements :class:`export.control.RobotInterface` over one gymnasium env, so the
ONNX policy is run by the same :class:`export.control.ControlLoop` a real controller uses:

* ``read_observation`` returns the current observation (float32), or raises ``StopIteration`` once the
  episode has ended (the loop's "stopped"); the terminal step itself completes normally;
* ``apply_action`` checks the command the way a robot's safety layer would (finite, shape, inside the
  action space; ``ValueError`` otherwise) and steps the simulator;
* ``safe_state`` halts: the simulator is not stepped again until the next episode.

:func:`run_onnx` resets episode k with seed ``seed + k``, like :func:`trpo_tf.episodes.run_episodes`
(``trpo evaluate``), so the returns of the ONNX file and of the TensorFlow policy are directly comparable.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

import robots
from export.control import ControlLoop
from export.metadata import PolicyMetadata
from export.runtime import OnnxPolicy
from trpo_tf.episodes import EpisodeEnv, summarize

UNTHROTTLED_HZ = 1e9  # rate_hz=None: a 1 ns period, i.e. each tick starts when the previous one ends


class SimulatedRobot(EpisodeEnv):
    """One simulated robot (a gymnasium env) behind the :class:`~export.control.RobotInterface`: the episode
    core of :mod:`trpo_tf.episodes` (seeded resets, return/length/success bookkeeping), driven by a
    :class:`~export.control.ControlLoop` instead of a plain loop."""

    def __init__(self, task_or_gym_id: str, seed: int = 0, env_kwargs: dict[str, Any] | None = None,
                 render_mode: str | None = None, randomization: Any = None) -> None:
        if type(seed) is not int:
            raise ValueError(f"seed must be an integer, got {seed!r}")
        resolved = robots.resolve_task(task_or_gym_id)
        self.task, self.gym_id = resolved.name, resolved.gym_id
        self.env_kwargs = {**resolved.env_kwargs, **(env_kwargs or {})}
        # randomization (robots/randomization.py) is applied where the env is made, in robots
        super().__init__(resolved.env_factory(env_kwargs, render_mode, randomization)(), seed)
        self.n_rejected_actions = 0
        self.step_seconds: list[float] = []

    # ------------------------------------------------------------------ RobotInterface

    def read_observation(self) -> np.ndarray:
        """The current observation; ``StopIteration`` when the episode is over (or never started)."""
        if self.obs is None or self.episode_over:
            raise StopIteration
        return self.obs.copy()

    def apply_action(self, action: Any) -> None:
        """Check the command like a robot's safety layer, then advance the simulation one control step."""
        if self.obs is None or self.episode_over:
            raise StopIteration
        command = self._checked(action)
        t0 = time.perf_counter()
        self.step(command)
        self.step_seconds.append(time.perf_counter() - t0)

    def safe_state(self) -> None:
        """Halt: the simulator is not stepped again in this episode (a real robot would brake)."""
        self.halted = True

    def _checked(self, action: Any) -> Any:
        space = self.env.action_space
        if self.discrete:
            ok = isinstance(action, (int, np.integer)) and not isinstance(action, bool) \
                and 0 <= int(action) < self.act_dim
            if not ok:
                self.n_rejected_actions += 1
                raise ValueError(f"action must be an integer in [0, {self.act_dim}), got {action!r}")
            return int(action)
        a = np.asarray(action)
        if a.shape != (self.act_dim,) or a.dtype.kind != "f" or not np.isfinite(a).all() \
                or (a < space.low).any() or (a > space.high).any():
            self.n_rejected_actions += 1
            raise ValueError(f"action must be {self.act_dim} finite floats inside [{space.low.tolist()}, "
                             f"{space.high.tolist()}], got {a.dtype}{a.shape} {a.tolist()}")
        return a


def check_compatible(robot: SimulatedRobot, metadata: PolicyMetadata) -> None:
    """The policy's shapes and bounds must be the simulator's (``ValueError`` names the difference)."""
    problems = []
    if robot.obs_dim != metadata.obs_dim:
        problems.append(f"obs_dim {metadata.obs_dim} vs {robot.obs_dim}")
    if robot.discrete != metadata.discrete or robot.act_dim != metadata.act_dim:
        problems.append(f"{'discrete' if metadata.discrete else 'continuous'} act_dim {metadata.act_dim} vs "
                        f"{'discrete' if robot.discrete else 'continuous'} act_dim {robot.act_dim}")
    elif not robot.discrete:
        space = robot.env.action_space
        if list(map(float, space.low)) != list(metadata.action_low) \
                or list(map(float, space.high)) != list(metadata.action_high):
            problems.append(f"action bounds {metadata.action_low}..{metadata.action_high} vs "
                            f"{space.low.tolist()}..{space.high.tolist()}")
    if problems:
        raise ValueError(f"the policy (exported for {metadata.task!r}) does not fit task {robot.task!r} "
                         f"({robot.gym_id}): " + "; ".join(problems) + " (policy vs simulator)")


def run_onnx(onnx_path: str | os.PathLike[str], task: str | None = None, episodes: int = 10, seed: int = 0,
             env_kwargs: dict[str, Any] | None = None, rate_hz: float | None = None,
             max_steps: int | None = None, randomization: Any = None) -> dict[str, Any]:
    """Drive the simulator of ``task`` (default: the file's metadata task) with the ONNX file through
    :class:`~export.control.ControlLoop` for ``episodes`` episodes (episode k seeded ``seed + k``).

    ``rate_hz=None`` runs unthrottled; a rate (e.g. the metadata's ``control_hz``) runs in real time and
    adds deadline statistics. ``max_steps`` caps an episode (for tasks without a time limit).
    Raises ``RuntimeError`` if an episode ends for any reason other than the episode's own end.
    """
    if type(episodes) is not int or episodes < 1:
        raise ValueError(f"episodes must be an integer >= 1, got {episodes!r}")
    if max_steps is not None and (type(max_steps) is not int or max_steps < 1):
        raise ValueError(f"max_steps must be None or an integer >= 1, got {max_steps!r}")
    policy = OnnxPolicy(onnx_path)
    meta = policy.metadata
    robot = SimulatedRobot(task if task is not None else meta.task, seed=seed, env_kwargs=env_kwargs,
                           randomization=randomization)
    latencies: list[float] = []
    perf, act = time.perf_counter, policy.act

    def timed_act(obs: np.ndarray) -> Any:
        t0 = perf()
        action = act(obs)
        latencies.append(perf() - t0)
        return action

    throttled = rate_hz is not None
    returns, lengths, successes = [], [], []
    ticks = missed = 0
    start = perf()
    try:
        check_compatible(robot, meta)
        for k in range(episodes):
            robot.start_episode(k)
            policy.reset()
            loop = ControlLoop(timed_act, robot, rate_hz if throttled else UNTHROTTLED_HZ,
                               max_overruns=None, max_consecutive_overruns=None,
                               spin_s=2e-4 if throttled else 0.0, history=max_steps or 100_000)
            report = loop.run(max_ticks=max_steps)
            if report.reason not in ("stopped", "completed"):
                raise RuntimeError(f"episode {k} (seed {seed + k}) on {robot.gym_id} aborted after "
                                   f"{report.ticks} steps: {report.reason}")
            ticks, missed = ticks + report.ticks, missed + report.missed_deadlines
            returns.append(robot.episode_return)
            lengths.append(robot.episode_length)
            if robot.success is not None:
                successes.append(robot.success)
    finally:
        robot.close()
    elapsed = perf() - start
    lat_us, step_us = np.asarray(latencies) * 1e6, np.asarray(robot.step_seconds) * 1e6
    result: dict[str, Any] = {
        "onnx_path": os.fspath(onnx_path), "task": robot.task, "gym_id": robot.gym_id,
        **summarize(returns, lengths, successes, seed),
        "steps": int(sum(lengths)), "steps_per_s": float(sum(lengths) / elapsed) if elapsed > 0 else 0.0,
        "latency_p50_us": float(np.percentile(lat_us, 50)) if lat_us.size else 0.0,
        "latency_p99_us": float(np.percentile(lat_us, 99)) if lat_us.size else 0.0,
        "latency_max_us": float(lat_us.max()) if lat_us.size else 0.0,
        "sim_step_p50_us": float(np.percentile(step_us, 50)) if step_us.size else 0.0,
        "rate_hz": rate_hz,
    }
    if throttled:
        result["deadline_met_fraction"] = 1.0 - missed / ticks if ticks else 1.0
    return result
