"""The critic fit (trpo_tf/critic.py): minibatch Adam on MSE(V(s), R̂), epochs × minibatches in one tf.function."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from trpo_tf.critic import CriticTrainer, explained_variance
from trpo_tf.models import build_models


def _pendulum_observations(n: int = 2000, seed: int = 0) -> np.ndarray:
    """Real states: Pendulum-v1 ([cos θ, sin θ, θ̇]) driven by random torques."""
    env = gym.make("Pendulum-v1")
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    rows = []
    for _ in range(n):
        rows.append(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return np.asarray(rows, np.float32)


def _target(obs: np.ndarray) -> np.ndarray:
    """A known smooth value function of the state."""
    return (2.0 * obs[:, 0] + 0.25 * obs[:, 1] * obs[:, 2]).astype(np.float32)


OBS = _pendulum_observations()
RETURNS = _target(OBS)


def _trainer(seed: int = 0, jit: bool = True, epochs: int = 10, lr: float = 1e-2) -> CriticTrainer:
    tf.keras.utils.set_random_seed(seed)
    _, critic = build_models(gym.spaces.Box(-np.inf, np.inf, (3,), np.float32),
                             gym.spaces.Box(-2.0, 2.0, (1,), np.float32), [32, 32])
    return CriticTrainer(critic, learning_rate=lr, epochs=epochs, batch_size=128, jit_compile=jit)


def _weights(trainer: CriticTrainer) -> list[np.ndarray]:
    return [v.numpy() for v in trainer.critic.trainable_variables]


def test_fits_a_known_value_function_on_real_states():
    trainer = _trainer()
    first = trainer.fit(OBS, RETURNS, seed=0)
    assert first["value_loss_after"] < 0.5 * first["value_loss"]
    for round_ in range(1, 4):
        out = trainer.fit(OBS, RETURNS, seed=round_)
    assert out["value_loss_after"] <= out["value_loss"]
    held_out = _pendulum_observations(500, seed=1)  # states the fit never saw
    assert explained_variance(trainer.values(held_out), _target(held_out)) > 0.95
    np.testing.assert_allclose(out["value_loss_after"], np.mean((trainer.values(OBS) - RETURNS) ** 2), rtol=1e-4)


def test_zero_epochs_reports_the_loss_and_changes_nothing():
    trainer = _trainer(epochs=0)
    before = _weights(trainer)
    out = trainer.fit(OBS, RETURNS, seed=0)
    assert out["value_loss"] == out["value_loss_after"] > 0.0
    for a, b in zip(before, _weights(trainer)):
        assert a.tobytes() == b.tobytes()


def test_the_seed_fixes_the_minibatches():
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        trainer = _trainer(epochs=2, jit=False)  # (the XLA path: the agreement test below)
        trainer.fit(OBS, RETURNS, seed=seed)
        runs[name] = np.concatenate([w.ravel() for w in _weights(trainer)])
    np.testing.assert_array_equal(runs["a"], runs["b"])
    assert not np.array_equal(runs["a"], runs["c"])


def test_xla_and_plain_graph_fit_agree():
    results = []
    for jit in (True, False):
        trainer = _trainer(jit=jit, epochs=2)
        out = trainer.fit(OBS, RETURNS, seed=3)
        results.append((out, np.concatenate([w.ravel() for w in _weights(trainer)])))
    (xla, w_xla), (plain, w_plain) = results
    assert xla["value_loss"] == pytest.approx(plain["value_loss"], rel=1e-5)
    assert xla["value_loss_after"] == pytest.approx(plain["value_loss_after"], rel=1e-3)
    np.testing.assert_allclose(w_xla, w_plain, rtol=1e-3, atol=1e-4)


def test_values_take_any_batch_size_and_match_the_model():
    trainer = _trainer(epochs=1)
    for n in (1, 5, 300):
        v = trainer.values(OBS[:n])
        assert v.shape == (n,)
        np.testing.assert_allclose(v, trainer.critic(OBS[:n]).numpy(), rtol=1e-5, atol=1e-6)


def test_explained_variance():
    target = np.array([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(target, target) == 1.0
    assert explained_variance(np.full(4, target.mean()), target) == pytest.approx(0.0)
    assert explained_variance(target[::-1], target) < 0.0
    assert np.isnan(explained_variance(target, np.ones(4)))


def test_the_fit_is_minibatch_adam_on_the_model_as_called():
    """The compiled fit normalizes the batch once; its weights and Adam slots equal those of a plain eager loop
    that calls the critic (normalizer included) on each minibatch of the same order (to float rounding: a
    graph and eager ops round apart)."""
    trainer, reference = _trainer(jit=False, epochs=3), _trainer(jit=False, epochs=3)
    for t in (trainer, reference):
        t.critic.normalizer.update(OBS[:500] * 3.0 + 1.0)  # statistics far from identity
    out = trainer.fit(OBS, RETURNS, seed=4)
    variables = reference.critic.trainable_variables
    for rows in reference.minibatch_order(len(OBS), seed=4):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(reference.critic(tf.gather(OBS, rows)) - tf.gather(RETURNS, rows)))
        reference.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    for a, b in zip(trainer.critic.trainable_variables + trainer.optimizer.variables,
                    reference.critic.trainable_variables + reference.optimizer.variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.name)
    assert out["value_loss_after"] == pytest.approx(float(np.mean((reference.values(OBS) - RETURNS) ** 2)), rel=1e-6)
