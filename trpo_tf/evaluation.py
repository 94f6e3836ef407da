"""Deterministic evaluation: run the policy's mode for N episodes on fixed seeds."""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
import numpy as np

from trpo_tf.rollout import make_env


def evaluate(act: Callable[[np.ndarray], np.ndarray], gym_id: str, env_kwargs: dict[str, Any] | None = None,
             episodes: int = 10, seed: int = 0) -> dict[str, Any]:
    """Mean/std return over ``episodes`` (episode k is reset with seed ``seed + k``).

    ``act`` maps a batch of raw observations [1, obs_dim] to actions; actions are clipped to the action
    space before stepping, as on a robot. ``success_rate`` is reported where the task sets ``is_success``.
    """
    env = make_env(gym_id, env_kwargs)
    space = env.action_space
    returns, lengths, successes = [], [], []
    try:
        for k in range(episodes):
            obs, _ = env.reset(seed=seed + k)
            total, length, done, info = 0.0, 0, False, {}
            while not done:
                action = act(np.asarray(obs, np.float32)[None])[0]
                if isinstance(space, gym.spaces.Box):
                    action = np.clip(action, space.low, space.high)
                obs, reward, terminated, truncated, info = env.step(action)
                total += float(reward)
                length += 1
                done = terminated or truncated
            returns.append(total)
            lengths.append(length)
            if "is_success" in info:
                successes.append(float(info["is_success"]))
    finally:
        env.close()
    result: dict[str, Any] = {
        "mean_return": float(np.mean(returns)) if returns else float("nan"),
        "std_return": float(np.std(returns)) if returns else float("nan"),
        "mean_length": float(np.mean(lengths)) if lengths else float("nan"),
        "episodes": episodes,
        "seed": seed,
        "returns": returns,
    }
    if successes:
        result["success_rate"] = float(np.mean(successes))
    return result
