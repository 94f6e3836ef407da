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
    layout of ``layout_envs`` envs (a worker process or Ray actor): env ``i`` resets on seed
    ``seed + first_env + i`` and draws its noise from stream ``first_env + i``, exactly as env
    ``first_env + i`` of one in-process vector env would. The actor then runs on a ``layout_envs``-row batch
    with this block's observations in their global rows: BLAS picks its kernels by the matrix shape, and a
    2-row product can round differently from the same rows inside a 4-row one (seen on Walker2d-v5: 1-ulp
    differences after 12 steps, then a different run). Same rows, same shape, same bits.
    """

    def __init__(self, envs: gym.vector.VectorEnv, actor: NumpyActor, seed: int, first_env: int = 0,
                 layout_envs: int = 0) -> None:
        self.envs, self.actor, self.first_env = envs, actor, first_env
        if layout_envs and not first_env + envs.num_envs <= layout_envs:
            raise ValueError(f"a block of envs {first_env}..{first_env + envs.num_envs - 1} does not fit a "
                             f"layout of {layout_envs} envs")
        self.layout_envs = layout_envs if layout_envs > envs.num_envs else 0
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
        rows = slice(self.first_env, self.first_env + n)
        if self.layout_envs:  # this block's rows of the whole layout's batch (see the class docstring)
            layout_obs = np.zeros((self.layout_envs, obs_dim), np.float32)
            layout_noise = np.zeros((self.layout_envs, *noise.shape[2:]), noise.dtype)
        for t in range(n_steps):
            if self.layout_envs:
                layout_obs[rows], layout_noise[rows] = self.obs, noise[t]
                actions = self.actor.act(layout_obs, layout_noise)[rows]
            else:
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


def block_sizes(n_envs: int, n_workers: int) -> list[int]:
    """``n_envs`` split into ``n_workers`` contiguous blocks whose sizes differ by at most one."""
    if not 1 <= n_workers <= n_envs:
        raise ValueError(f"workers must be in [1, n_envs={n_envs}], got {n_workers}")
    bounds = np.linspace(0, n_envs, n_workers + 1).round().astype(int)
    return [int(b - a) for a, b in zip(bounds[:-1], bounds[1:])]


def concat_batches(parts: Sequence[RolloutBatch]) -> RolloutBatch:
    """Blocks of envs side by side: the batch one vector env over all of them would give (env axis 1;
    truncations in (t, env) order; episode statistics block by block)."""
    offsets = np.cumsum([0] + [p.last_obs.shape[0] for p in parts[:-1]])
    index = np.concatenate([np.asarray(p.final_index, np.int64).reshape(-1, 2) + [0, off]
                            for p, off in zip(parts, offsets)])
    obs_dim = parts[0].obs.shape[-1]
    final_obs = np.concatenate([np.asarray(p.final_obs, np.float32).reshape(-1, obs_dim) for p in parts])
    order = np.lexsort((index[:, 1], index[:, 0]))
    return RolloutBatch(
        obs=np.concatenate([p.obs for p in parts], axis=1),
        actions=np.concatenate([p.actions for p in parts], axis=1),
        rewards=np.concatenate([p.rewards for p in parts], axis=1),
        terminated=np.concatenate([p.terminated for p in parts], axis=1),
        truncated=np.concatenate([p.truncated for p in parts], axis=1),
        last_obs=np.concatenate([p.last_obs for p in parts]),
        final_index=index[order],
        final_obs=final_obs[order],
        episode_returns=[x for p in parts for x in p.episode_returns],
        episode_lengths=[x for p in parts for x in p.episode_lengths],
        episode_successes=[x for p in parts for x in p.episode_successes],
    )


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
