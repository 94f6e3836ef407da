"""Rollouts on gymnasium vector envs (seed 004, step 1: run π_θ, store s, a, r, terminated, truncated).

Vector envs reset in the same step (``AutoresetMode.SAME_STEP``): the observation returned after an
episode ends is already the next episode's first one, and the true final observation is kept so GAE can
bootstrap from it on a time-limit truncation.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from trpo_tf.acting import NumpyActor
from trpo_tf.vector import BlockVectorEnv


def make_vector_env(make_env: Callable[[], gym.Env], n_envs: int, mode: str = "sync",
                    n_workers: int = 0) -> gym.vector.VectorEnv:
    """``n_envs`` envs from the factory ``make_env``, in-process ("sync"), or split over ``n_workers``
    subprocesses ("async"; 0 = one per CPU core) that each step a block of envs
    (:class:`trpo_tf.vector.BlockVectorEnv`; forkserver, so no TensorFlow in the workers: ``make_env`` must
    be picklable and register what it builds, as ``robots.EnvFactory`` does)."""
    fns = [make_env] * n_envs
    if mode == "async":
        workers = n_workers or min(n_envs, os.cpu_count() or 1)
        return BlockVectorEnv(fns, n_workers=min(workers, n_envs))
    if mode == "sync":
        return gym.vector.SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    raise ValueError(f"vector env mode must be 'sync' or 'async', got {mode!r}")


@dataclass
class RolloutBatch:
    """Arrays shaped [T, n_envs, ...]; ``final_obs[k]`` is the last observation of the episode truncated
    at step ``final_index[k] = (t, env)``; ``last_obs`` is the observation after the final step."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    last_obs: np.ndarray
    final_index: np.ndarray
    final_obs: np.ndarray
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    episode_successes: list[float] = field(default_factory=list)

    @property
    def n_steps(self) -> int:
        return self.rewards.size


def env_noise_streams(noise_seed: int, env_ids: Sequence[int]) -> list[np.random.Generator]:
    """One generator per env, derived from (seed, env index) alone (NumPy ``SeedSequence`` spawn keys), so
    an env's action noise does not depend on how envs are split over processes or machines."""
    return [np.random.default_rng(np.random.SeedSequence(noise_seed, spawn_key=(int(i),))) for i in env_ids]


class RolloutCollector:
    """Steps a vector env with a :class:`NumpyActor`, one batched policy call per step.

    ``first_env`` is the global index of ``envs``' first env when this collector steps one block of a larger
    layout (a Ray worker): env ``i`` resets on seed ``seed + first_env + i`` and draws its noise from stream
    ``first_env + i``, exactly as env ``first_env + i`` of one in-process vector env would.
    """

    def __init__(self, envs: gym.vector.VectorEnv, actor: NumpyActor, seed: int, first_env: int = 0) -> None:
        self.envs, self.actor, self.first_env = envs, actor, first_env
        space = envs.single_action_space
        self.discrete = isinstance(space, gym.spaces.Discrete)
        self.low = None if self.discrete else space.low.astype(np.float32)
        self.high = None if self.discrete else space.high.astype(np.float32)
        obs, _ = envs.reset(seed=seed + first_env)
        self.obs = obs.astype(np.float32)
        self.running_return = np.zeros(envs.num_envs)
        self.running_length = np.zeros(envs.num_envs, dtype=np.int64)

    def collect(self, n_steps: int, rng: np.random.Generator) -> RolloutBatch:
        """Run ``n_steps`` vector steps with stochastic actions; ``rng`` gives this iteration's noise seed."""
        return self.segment(n_steps, int(rng.integers(2**63)))

    def segment(self, n_steps: int, noise_seed: int) -> RolloutBatch:
        """Run ``n_steps`` vector steps; env ``i``'s noise comes from stream ``(noise_seed, first_env + i)``."""
        n, obs_dim = self.envs.num_envs, self.obs.shape[1]
        obs_buf = np.empty((n_steps, n, obs_dim), np.float32)
        act_shape = (n_steps, n) if self.discrete else (n_steps, n, len(self.low))
        act_buf = np.empty(act_shape, np.int64 if self.discrete else np.float32)
        rew_buf = np.empty((n_steps, n), np.float32)
        term_buf = np.empty((n_steps, n), bool)
        trunc_buf = np.empty((n_steps, n), bool)
        final_index: list[tuple[int, int]] = []
        final_obs: list[np.ndarray] = []
        batch = RolloutBatch(obs_buf, act_buf, rew_buf, term_buf, trunc_buf, self.obs, np.empty((0, 2)),
                             np.empty((0, obs_dim)))
        noise = self.actor.noise(env_noise_streams(noise_seed, range(self.first_env, self.first_env + n)), n_steps)
        for t in range(n_steps):
            actions = self.actor.act(self.obs, noise[t])
            # The stored sample keeps its log-prob; only the env sees the clipped action.
            env_actions = actions if self.discrete else np.clip(actions, self.low, self.high)
            next_obs, rewards, terminated, truncated, info = self.envs.step(env_actions)
            obs_buf[t], act_buf[t], rew_buf[t] = self.obs, actions, rewards
            term_buf[t], trunc_buf[t] = terminated, truncated
            self.running_return += rewards
            self.running_length += 1
            done = terminated | truncated
            if done.any():
                final_info = info.get("final_info", {})
                for i in np.flatnonzero(done):
                    if truncated[i]:
                        final_index.append((t, i))
                        final_obs.append(info["final_obs"][i])
                    batch.episode_returns.append(float(self.running_return[i]))
                    batch.episode_lengths.append(int(self.running_length[i]))
                    if "is_success" in final_info and final_info.get("_is_success", np.ones(n, bool))[i]:
                        batch.episode_successes.append(float(final_info["is_success"][i]))
                self.running_return[done] = 0.0
                self.running_length[done] = 0
            self.obs = next_obs.astype(np.float32)
        batch.last_obs = self.obs.copy()
        if final_index:
            batch.final_index = np.asarray(final_index, np.int64)
            batch.final_obs = np.asarray(final_obs, np.float32)
        return batch

    def close(self) -> None:
        self.envs.close()


def next_values(batch: RolloutBatch, values: np.ndarray, last_values: np.ndarray,
                final_values: np.ndarray) -> np.ndarray:
    """V of the observation following each step: V(s_{t+1}), V(last_obs) after the final step, and
    V(final_obs) where an episode was truncated (see :func:`trpo_tf.advantages.compute_gae`)."""
    nxt = np.empty_like(values)
    nxt[:-1] = values[1:]
    nxt[-1] = last_values
    if len(batch.final_index):
        nxt[batch.final_index[:, 0], batch.final_index[:, 1]] = final_values
    return nxt
