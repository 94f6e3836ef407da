"""The one episode loop: evaluate, render, run-onnx, the random baseline and robustness sweeps all use it.

TensorFlow-free and ``robots``-free: it steps any gymnasium env (built by an env factory) with any callable
policy. Episode k is reset with seed ``seed + k``, so two policies run on the same seeds meet the same
episodes (a TensorFlow policy and its ONNX export give comparable returns).

Two drivers share one core, :class:`EpisodeEnv` (reset with seed, step, return/length/success
bookkeeping): :func:`run_episodes` steps it in a plain loop; ``trpo run-onnx`` drives it through the robot's
own :class:`export.control.ControlLoop` (``export.sim.SimulatedRobot`` is an :class:`EpisodeEnv` behind the
``RobotInterface``). Both report with :func:`summarize`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

Act = Callable[[np.ndarray], np.ndarray]


class EpisodeEnv:
    """One env, stepped episode by episode, counting return, length and the final ``is_success``."""

    def __init__(self, env: gym.Env, seed: int = 0) -> None:
        if type(seed) is not int:
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.env, self.seed = env, seed
        space = env.action_space
        if not isinstance(space, (gym.spaces.Box, gym.spaces.Discrete)):
            raise ValueError(f"expected a Box or Discrete action space, got {space}")
        self.discrete = isinstance(space, gym.spaces.Discrete)
        self.obs_dim = int(env.observation_space.shape[0])
        self.act_dim = int(space.n) if self.discrete else int(space.shape[0])
        self.episode_index = -1
        self.obs: np.ndarray | None = None
        self.episode_return, self.episode_length = 0.0, 0
        self.terminated = self.truncated = self.halted = False
        self.last_info: dict[str, Any] = {}

    def start_episode(self, k: int) -> np.ndarray:
        """Reset for episode ``k`` with seed ``seed + k``; returns the first observation (float32)."""
        obs, info = self.env.reset(seed=self.seed + k)
        self.episode_index = k
        self.obs = np.asarray(obs, np.float32)
        self.episode_return, self.episode_length = 0.0, 0
        self.terminated = self.truncated = self.halted = False
        self.last_info = dict(info)
        return self.obs.copy()

    @property
    def episode_over(self) -> bool:
        return self.terminated or self.truncated or self.halted

    def step(self, action: Any) -> np.ndarray:
        """Apply ``action`` for one control step; returns the next observation."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.obs = np.asarray(obs, np.float32)
        self.episode_return += float(reward)
        self.episode_length += 1
        self.terminated, self.truncated, self.last_info = bool(terminated), bool(truncated), dict(info)
        return self.obs.copy()

    @property
    def success(self) -> float | None:
        """The episode's ``is_success`` (from its last step), or None where the task does not set it."""
        return float(self.last_info["is_success"]) if "is_success" in self.last_info else None

    def close(self) -> None:
        self.env.close()


def summarize(returns: list[float], lengths: list[int], successes: list[float], seed: int) -> dict[str, Any]:
    """The result dict every episode driver returns (``success_rate`` only where the task reports it)."""
    result: dict[str, Any] = {
        "mean_return": float(np.mean(returns)) if returns else float("nan"),
        "std_return": float(np.std(returns)) if returns else float("nan"),
        "mean_length": float(np.mean(lengths)) if lengths else float("nan"),
        "episodes": len(returns),
        "seed": seed,
        "returns": [float(r) for r in returns],
    }
    if successes:
        result["success_rate"] = float(np.mean(successes))
    return result


def run_episodes(act: Act, make_env: Callable[[], gym.Env], episodes: int = 10, seed: int = 0,
                 max_steps: int | None = None,
                 observe: Callable[[EpisodeEnv], bool | None] | None = None) -> dict[str, Any]:
    """Run ``act`` for ``episodes`` episodes (episode k seeded ``seed + k``) and :func:`summarize` them.

    ``act`` maps a batch of raw observations [1, obs_dim] to actions [1, ...]; continuous actions are
    clipped to the action space before stepping, as on a robot. ``max_steps`` caps an episode.
    ``observe(env)`` is called after every reset and every step (e.g. to grab a frame); returning False
    ends the run after the current step (episodes cut short this way still count).
    """
    if type(episodes) is not int or episodes < 1:
        raise ValueError(f"episodes must be an integer >= 1, got {episodes!r}")
    runner = EpisodeEnv(make_env(), seed)
    space = runner.env.action_space
    low, high = (None, None) if runner.discrete else (space.low, space.high)
    returns, lengths, successes = [], [], []
    stop = False
    try:
        for k in range(episodes):
            obs = runner.start_episode(k)
            stop = observe is not None and observe(runner) is False
            while not stop and not runner.episode_over and (max_steps is None or runner.episode_length < max_steps):
                action = np.asarray(act(obs[None]))[0]
                action = int(action) if runner.discrete else np.clip(action, low, high)
                obs = runner.step(action)
                stop = observe is not None and observe(runner) is False
            returns.append(runner.episode_return)
            lengths.append(runner.episode_length)
            if runner.success is not None:
                successes.append(runner.success)
            if stop:
                break
    finally:
        runner.close()
    return summarize(returns, lengths, successes, seed)
