"""End to end through the real collector: a time-limit truncation must bootstrap from the final observation.

An env that pays reward 1 forever, is truncated every 100 steps by gymnasium's ``TimeLimit`` and is never
terminated; its observation is noise, so nothing tells the critic how far the time limit is. In the MDP
every state is worth Σ γᵏ = 1/(1−γ) = 100 (γ = 0.99). Collect → GAE → critic fit, a few rounds, through
``RolloutCollector``, ``NumpyActor``, ``next_values``, ``compute_gae`` and ``CriticTrainer``: the fitted value
approaches 100 only if truncations bootstrap from V(final_obs) (measured: 99.3 after 35 rounds). Treating
them as terminations instead teaches the critic a 100-step episode's discounted reward-to-go (measured: 46;
37 on average over the episode, plus the bootstrap at the end of each collected segment).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import tensorflow as tf
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers import TimeLimit

from trpo_tf.acting import NumpyActor
from trpo_tf.advantages import compute_gae
from trpo_tf.critic import CriticTrainer
from trpo_tf.models import build_models
from trpo_tf.rollout import RolloutCollector, next_values

GAMMA, LAM, LIMIT = 0.99, 0.95, 100


class ForeverRewardEnv(gym.Env):
    """Reward 1 every step, never terminated; the observation is uniform noise (no time in it)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        return self._obs(), 1.0, False, False, {}

    def _obs(self) -> np.ndarray:
        return self.np_random.uniform(-1.0, 1.0, 3).astype(np.float32)


def _fitted_value(truncation_bootstraps: bool, rounds: int = 35, n_envs: int = 4, n_steps: int = 150) -> float:
    tf.keras.utils.set_random_seed(0)
    envs = gym.vector.SyncVectorEnv([lambda: TimeLimit(ForeverRewardEnv(), LIMIT) for _ in range(n_envs)],
                                    autoreset_mode=AutoresetMode.SAME_STEP)
    actor, critic = build_models(ForeverRewardEnv.observation_space, ForeverRewardEnv.action_space, [16],
                                 normalize_obs=False)
    trainer = CriticTrainer(critic, learning_rate=0.05, epochs=10, batch_size=150, jit_compile=True)
    collector = RolloutCollector(envs, NumpyActor(actor), seed=0)
    rng = np.random.default_rng(0)
    truncations = 0
    for round_ in range(rounds):
        batch = collector.collect(n_steps, rng)
        obs = batch.obs.reshape(-1, 3)
        n = len(obs)
        v = trainer.values(np.concatenate([obs, batch.last_obs, batch.final_obs]))
        values = v[:n].reshape(batch.rewards.shape)
        nxt = next_values(batch, values, v[n:n + n_envs], v[n + n_envs:])
        terminated = batch.terminated if truncation_bootstraps else batch.terminated | batch.truncated
        _, returns = compute_gae(batch.rewards, values, nxt, terminated, batch.truncated, GAMMA, LAM)
        trainer.fit(obs, returns.reshape(-1), seed=round_)
        truncations += int(batch.truncated.sum())
    envs.close()
    assert truncations == n_envs * (rounds * n_steps // LIMIT)  # every 100 steps, in every env
    probe = np.random.default_rng(1).uniform(-1.0, 1.0, (1000, 3)).astype(np.float32)
    return float(np.mean(trainer.values(probe)))


def test_truncation_bootstraps_so_the_value_is_one_over_one_minus_gamma():
    value = _fitted_value(truncation_bootstraps=True)
    assert abs(value - 1.0 / (1.0 - GAMMA)) < 0.05 * 100.0, value


def test_treating_truncation_as_termination_learns_a_clearly_different_value():
    value = _fitted_value(truncation_bootstraps=False)
    assert value < 60.0, value  # measured 46
