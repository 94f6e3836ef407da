"""BlockVectorEnv: blocks of envs in worker processes behave exactly like the same envs in-process."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from robots import EnvFactory
from trpo_tf.rollout import make_vector_env
from trpo_tf.vector import BlockVectorEnv, merge_infos


def _fns(gym_id: str, n: int, **kwargs):
    return [EnvFactory(gym_id, kwargs) for _ in range(n)]


@pytest.mark.parametrize("gym_id, kwargs", [
    ("CartPole-v1", {"max_episode_steps": 15}),  # terminations and truncations inside 60 steps
    ("robots/GripperReach-v0", {}),  # is_success in the final infos, a MuJoCo scene per worker
])
def test_block_env_matches_sync_env_step_for_step(gym_id, kwargs):
    sync = gym.vector.SyncVectorEnv(_fns(gym_id, 5, **kwargs), autoreset_mode=AutoresetMode.SAME_STEP)
    block = BlockVectorEnv(_fns(gym_id, 5, **kwargs), n_workers=2)
    try:
        assert block.num_envs == 5 and sorted(block.sizes) == [2, 3]
        obs_a, _ = sync.reset(seed=3)
        obs_b, _ = block.reset(seed=3)
        np.testing.assert_array_equal(obs_a, obs_b)
        sync.single_action_space.seed(0)
        ended = 0
        for _ in range(60):
            actions = np.stack([sync.single_action_space.sample() for _ in range(5)])
            a = sync.step(actions)
            b = block.step(actions)
            for x, y in zip(a[:4], b[:4]):
                np.testing.assert_array_equal(x, y)
            done = a[2] | a[3]
            ended += int(done.sum())
            for i in np.flatnonzero(done):
                np.testing.assert_array_equal(a[4]["final_obs"][i], b[4]["final_obs"][i])
                if "is_success" in a[4]["final_info"]:
                    assert a[4]["final_info"]["is_success"][i] == b[4]["final_info"]["is_success"][i]
        assert ended > 0
    finally:
        sync.close()
        block.close()


def test_make_vector_env_async_uses_one_worker_per_core_at_most():
    envs = make_vector_env(EnvFactory("CartPole-v1"), 3, mode="async", n_workers=8)
    try:
        assert isinstance(envs, BlockVectorEnv) and len(envs.sizes) == 3
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (3, 4)
    finally:
        envs.close()


def test_merge_infos_fills_missing_keys_and_masks():
    merged = merge_infos([{"final_obs": np.array([None, np.ones(2)], object), "_final_obs": np.array([False, True])},
                          {}], [2, 3])
    assert merged["_final_obs"].tolist() == [False, True, False, False, False]
    assert len(merged["final_obs"]) == 5 and merged["final_obs"][1].tolist() == [1.0, 1.0]


def test_bad_worker_count_is_a_clear_error():
    with pytest.raises(ValueError, match="n_workers must be in"):
        BlockVectorEnv(_fns("CartPole-v1", 2), n_workers=3)
