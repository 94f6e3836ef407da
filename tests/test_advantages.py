"""GAE against a hand-worked example, including termination and time-limit truncation; reward scaling."""

from __future__ import annotations

import numpy as np
import pytest

from trpo_tf.advantages import RewardScaler, compute_gae
from trpo_tf.rollout import RolloutBatch, next_values


def test_gae_hand_worked_termination_and_truncation():
    # One env, 4 steps, γ = 0.9, λ = 0.5.
    # t=0,1: an episode that TERMINATES at t=1 (no bootstrap);
    # t=2,3: a new episode TRUNCATED at t=3 by the time limit (bootstrap from V(final_obs) = 10).
    gamma, lam = 0.9, 0.5
    rewards = np.array([[1.0], [2.0], [3.0], [4.0]])
    values = np.array([[0.5], [1.0], [1.5], [2.0]])
    terminated = np.array([[False], [True], [False], [False]])
    truncated = np.array([[False], [False], [False], [True]])
    nxt = np.array([[1.0], [1.5], [2.0], [10.0]])  # V(s1), V(s2) (ignored: terminal), V(s3), V(final_obs)

    adv, ret = compute_gae(rewards, values, nxt, terminated, truncated, gamma, lam)

    d3 = 4.0 + 0.9 * 10.0 - 2.0  # 11.0, bootstrapped
    d2 = 3.0 + 0.9 * 2.0 - 1.5  # 3.3
    d1 = 2.0 + 0.0 - 1.0  # 1.0, terminal
    d0 = 1.0 + 0.9 * 1.0 - 0.5  # 1.4
    a3 = d3
    a2 = d2 + gamma * lam * a3  # 3.3 + 0.45 * 11 = 8.25
    a1 = d1  # recursion stops at the episode boundary
    a0 = d0 + gamma * lam * a1  # 1.4 + 0.45 = 1.85
    np.testing.assert_allclose(adv[:, 0], [a0, a1, a2, a3], rtol=1e-6)
    np.testing.assert_allclose(ret[:, 0], np.array([a0, a1, a2, a3]) + values[:, 0], rtol=1e-6)
    assert adv.dtype == np.float32


def test_gae_lambda_one_is_discounted_return_minus_value_within_an_episode():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(6, 2))
    values = rng.normal(size=(6, 2))
    nxt = np.vstack([values[1:], np.zeros((1, 2))])
    terminated = np.zeros((6, 2), bool)
    terminated[-1] = True
    adv, _ = compute_gae(rewards, values, nxt, terminated, np.zeros_like(terminated), 0.97, 1.0)
    discounted = np.array([[sum(0.97**k * rewards[t + k, e] for k in range(6 - t)) for e in range(2)]
                           for t in range(6)])
    np.testing.assert_allclose(adv, discounted - values, rtol=1e-5, atol=1e-6)


def test_gae_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        compute_gae(np.zeros((3, 1)), np.zeros((3, 2)), np.zeros((3, 1)), np.zeros((3, 1), bool),
                    np.zeros((3, 1), bool), 0.99, 0.95)


def test_next_values_uses_final_observation_values_at_truncation():
    values = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    batch = RolloutBatch(obs=np.zeros((3, 2, 1)), actions=np.zeros((3, 2, 1)), rewards=np.zeros((3, 2)),
                         terminated=np.zeros((3, 2), bool), truncated=np.zeros((3, 2), bool),
                         last_obs=np.zeros((2, 1)), final_index=np.array([[1, 0]]), final_obs=np.zeros((1, 1)))
    nxt = next_values(batch, values, last_values=np.array([7.0, 8.0]), final_values=np.array([99.0]))
    np.testing.assert_array_equal(nxt, [[3.0, 4.0], [99.0, 6.0], [7.0, 8.0]])


def test_reward_scaler_divides_by_running_return_std():
    rng = np.random.default_rng(0)
    scaler = RewardScaler(n_envs=4, gamma=0.99)
    rewards = rng.normal(loc=50.0, scale=5.0, size=(500, 4))
    dones = np.zeros((500, 4), bool)
    dones[99::100] = True
    scaled = scaler(rewards, dones)
    assert scaled.shape == rewards.shape
    # Returns of ~50/(1-γ)-scale rewards get a std in the hundreds: scaled rewards shrink by that factor.
    ratio = rewards[-1] / scaled[-1]
    np.testing.assert_allclose(ratio, np.sqrt(scaler.var + 1e-8), rtol=1e-5)
    assert np.all(ratio > 10)
    state = scaler.state()
    other = RewardScaler(4, 0.99)
    other.load_state(state)
    again = other.state()
    assert {k: again[k] for k in ("count", "mean", "var")} == {k: state[k] for k in ("count", "mean", "var")}
    np.testing.assert_array_equal(again["discounted"], state["discounted"])


def test_reward_scaler_state_round_trip_scales_a_resumed_stream_exactly_like_an_uninterrupted_one():
    """Checkpoint → restore in the middle of a stream (episodes running) changes nothing: the running
    discounted return per env is part of the state."""
    rng = np.random.default_rng(0)
    rewards = rng.normal(1.0, 2.0, size=(300, 3))
    dones = rng.random((300, 3)) < 0.01
    uninterrupted = RewardScaler(3, 0.99)  # one call per collected batch, as in training
    full = np.concatenate([uninterrupted(rewards[:137], dones[:137]), uninterrupted(rewards[137:], dones[137:])])
    first = RewardScaler(3, 0.99)
    head = first(rewards[:137], dones[:137])
    resumed = RewardScaler(3, 0.99)
    resumed.load_state(first.state())
    tail = resumed(rewards[137:], dones[137:])
    np.testing.assert_array_equal(np.concatenate([head, tail]), full)


def _scale_one_row_at_a_time(scaler: RewardScaler, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
    """The definition: after each row, merge its discounted returns into the running mean and variance
    (Chan et al.'s pairwise update), then divide that row by the running std."""
    scaled = np.empty_like(rewards)
    for t in range(len(rewards)):
        scaler.discounted = scaler.discounted * scaler.gamma + rewards[t]
        x = scaler.discounted
        n = scaler.count + len(x)
        delta = x.mean() - scaler.mean
        scaler.var = (scaler.var * scaler.count + x.var() * len(x) + delta**2 * scaler.count * len(x) / n) / n
        scaler.mean += delta * len(x) / n
        scaler.count = n
        scaled[t] = np.clip(rewards[t] / np.sqrt(scaler.var + scaler.epsilon), -scaler.clip, scaler.clip)
        scaler.discounted = np.where(dones[t], 0.0, scaler.discounted)
    return scaled


def test_reward_scaler_equals_the_row_by_row_running_statistics():
    """All rows at once from cumulative sums give what merging them one at a time gives, across calls and
    episode ends, with returns far from zero (where a careless one-pass variance loses its digits)."""
    rng = np.random.default_rng(3)
    fast, slow = RewardScaler(8, 0.995), RewardScaler(8, 0.995)
    for _ in range(4):
        rewards = rng.normal(3.0, 1.0, size=(256, 8))
        dones = rng.random((256, 8)) < 0.004
        np.testing.assert_allclose(fast(rewards, dones), _scale_one_row_at_a_time(slow, rewards, dones),
                                   rtol=1e-6)  # (float32 out)
        assert fast.count == pytest.approx(slow.count, rel=1e-12)
        assert fast.mean == pytest.approx(slow.mean, rel=1e-9) and fast.var == pytest.approx(slow.var, rel=1e-9)
        np.testing.assert_array_equal(fast.discounted, slow.discounted)
    assert fast(np.zeros((0, 8)), np.zeros((0, 8), bool)).shape == (0, 8)  # an empty batch changes nothing
    assert fast.count == pytest.approx(slow.count, rel=1e-12)


def test_reward_scaler_loads_an_old_state_without_running_returns():
    scaler = RewardScaler(2, 0.99)
    scaler.load_state({"count": 10.0, "mean": 1.0, "var": 4.0})  # what checkpoints of version 0.1.0 hold
    assert scaler.state()["var"] == 4.0 and np.all(scaler.state()["discounted"] == 0.0)
    with pytest.raises(ValueError, match="one per env"):
        scaler.load_state({"count": 1.0, "mean": 0.0, "var": 1.0, "discounted": np.zeros(3)})
