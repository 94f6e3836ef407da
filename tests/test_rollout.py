"""The rollout collector's bookkeeping on real envs: truncations keep their true final observation, episode
returns/lengths are the sums of their steps, and ``is_success`` is recorded per ended episode."""

from __future__ import annotations

import numpy as np

from robots import EnvFactory
from trpo_tf.acting import NumpyActor
from trpo_tf.models import build_models
from trpo_tf.rollout import RolloutCollector, make_vector_env


def _collector(make_env: EnvFactory, n_envs: int, seed: int = 3) -> RolloutCollector:
    probe = make_env()
    actor, _ = build_models(probe.observation_space, probe.action_space, [16], "tanh")
    probe.close()
    return RolloutCollector(make_vector_env(make_env, n_envs, "sync"), NumpyActor(actor), seed=seed)


def test_truncation_keeps_the_true_final_observation_and_episode_sums():
    make_env = EnvFactory("Pendulum-v1", {"max_episode_steps": 5})  # never terminates: truncated every 5 steps
    collector = _collector(make_env, 2)
    try:
        batch = collector.collect(12, np.random.default_rng(0))
    finally:
        collector.close()
    assert batch.truncated[[4, 9]].all() and batch.truncated.sum() == 4 and not batch.terminated.any()
    assert batch.final_index.tolist() == [[4, 0], [4, 1], [9, 0], [9, 1]]
    # Replay env 1's first episode by hand: its 5th step ends at final_obs[1], not at the reset obs[5, 1].
    env = make_env()
    obs, _ = env.reset(seed=3 + 1)
    np.testing.assert_allclose(obs, batch.obs[0, 1], atol=1e-6)
    for t in range(5):
        obs, *_ = env.step(np.clip(batch.actions[t, 1], -2.0, 2.0))
    env.close()
    np.testing.assert_allclose(obs, batch.final_obs[1], atol=1e-5)
    assert not np.allclose(batch.final_obs[1], batch.obs[5, 1])
    assert batch.episode_lengths == [5, 5, 5, 5]
    np.testing.assert_allclose(batch.episode_returns[:2], batch.rewards[:5].sum(axis=0), rtol=1e-5)
    assert batch.n_steps == 24 and batch.last_obs.shape == (2, 3)


def test_success_is_recorded_for_every_ended_episode():
    collector = _collector(EnvFactory("robots/GripperReach-v0", {"max_episode_steps": 4}), 2)
    try:
        batch = collector.collect(9, np.random.default_rng(0))
    finally:
        collector.close()
    assert len(batch.episode_returns) == 4 == len(batch.episode_successes)
    assert set(batch.episode_successes) <= {0.0, 1.0}
