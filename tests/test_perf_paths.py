"""The fast paths added for speed compute the same thing as the reference ones.

- Gauss-Newton Fisher-vector product (Jᵀ·H_z·J·v), by autodiff and from layer Jacobians (trpo_tf/fisher.py),
  = nested-tape Hessian-vector product of the mean KL at θ_old.
- A whole policy step with either Gauss-Newton product lands where the nested-tape step lands.
- The conjugate gradient (under XLA) matches a float64 numpy CG iteration for iteration.
- The critic fit (minibatches gathered before the XLA loop) is seeded, lowers the loss, and runs with 0 epochs.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from trpo_tf.critic import CriticTrainer
from trpo_tf.fisher import dense_chain, layer_jacobian_fvp
from trpo_tf.models import build_models
from trpo_tf.trpo import (
    TRPOPolicyStep,
    TRPOStepSettings,
    conjugate_gradient,
    fisher_vector_product,
    flatten,
    gauss_newton_fvp,
)

OBS = gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)
SPACES = {"gaussian": gym.spaces.Box(-1.0, 1.0, (3,), np.float32), "categorical": gym.spaces.Discrete(4)}


def _models(kind: str, seed: int = 0):
    tf.keras.utils.set_random_seed(seed)
    return build_models(OBS, SPACES[kind], [16, 16])


def _batch(actor, n: int = 256, seed: int = 0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 6)).astype(np.float32)
    actions = actor(obs).sample(seed=seed).numpy()
    signal = actions[:, 0] if actions.ndim == 2 else (actions == 2).astype(np.float32)
    adv = (signal + 0.1 * rng.normal(size=n)).astype(np.float32)
    return obs, actions, adv


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
@pytest.mark.parametrize("jit", [False, True])
def test_gauss_newton_product_equals_nested_tape_product(kind, jit):
    actor, _ = _models(kind)
    fixed = [v.value for v in actor.non_trainable_variables]

    def policy(p, x):
        return actor.stateless_call(p, fixed, x)[0]

    # θ_old away from the initialization, so the check is not at a special point.
    params = [v.value + 0.3 * tf.random.stateless_normal(v.shape, seed=[i, 3])
              for i, v in enumerate(actor.trainable_variables)]
    obs = tf.constant(_batch(actor)[0])
    old_dist = policy([tf.stop_gradient(p) for p in params], obs)

    def three(v):
        gn = gauss_newton_fvp(policy, params, obs, damping=0.1)(v)
        layers = layer_jacobian_fvp(actor, dense_chain(actor), params, obs, damping=0.1)(v)
        nested = fisher_vector_product(policy, params, obs, old_dist, v, damping=0.1)
        return gn, layers, nested

    run = tf.function(three, jit_compile=True) if jit else three
    rng = np.random.default_rng(1)
    for _ in range(3):
        v = tf.constant(rng.normal(size=flatten(params).shape[0]).astype(np.float32))
        gn, layers, nested = (t.numpy() for t in run(v))
        np.testing.assert_allclose(gn, nested, rtol=1e-4, atol=1e-5 * np.abs(nested).max())
        np.testing.assert_allclose(layers, nested, rtol=1e-4, atol=1e-5 * np.abs(nested).max())
        assert np.dot(v.numpy(), gn) > 0.0 and np.dot(v.numpy(), layers) > 0.0  # positive definite with damping


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
def test_policy_step_lands_on_the_same_parameters_with_either_product(kind):
    results = {}
    for product in ("gauss-newton", "gauss-newton-autodiff", "nested-tape"):
        actor, _ = _models(kind)
        obs, actions, adv = _batch(actor)
        info = TRPOPolicyStep(actor, TRPOStepSettings(cg_iters=5, fisher_product=product), jit_compile=False)(
            obs, actions, adv)
        assert info["accepted"], info["reason"]
        results[product] = (flatten(actor.trainable_variables).numpy(), info)
    theta_nt, info_nt = results["nested-tape"]
    for product in ("gauss-newton", "gauss-newton-autodiff"):
        theta_gn, info_gn = results[product]
        step = np.linalg.norm(theta_gn - flatten(_models(kind)[0].trainable_variables).numpy())
        assert step > 0.0
        assert np.linalg.norm(theta_gn - theta_nt) < 1e-3 * step
        assert info_gn["backtracks"] == info_nt["backtracks"]
        assert abs(info_gn["kl"] - info_nt["kl"]) < 1e-3 * info_nt["kl"] + 1e-7


def test_unknown_fisher_product_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="gauss-newton"):
        TRPOStepSettings(fisher_product="exact")


def _numpy_cg(a: np.ndarray, b: np.ndarray, iters: int) -> np.ndarray:
    x, r, p = np.zeros_like(b), b.copy(), b.copy()
    rr = r @ r
    for _ in range(iters):
        ap = a @ p
        alpha = rr / (p @ ap)
        x, r = x + alpha * p, r - alpha * ap
        rr_new = r @ r
        p, rr = r + (rr_new / rr) * p, rr_new
    return x


@pytest.mark.parametrize("iters", [1, 4, 10])
def test_conjugate_gradient_matches_numpy_iteration_for_iteration(iters):
    rng = np.random.default_rng(iters)
    m = rng.normal(size=(40, 40))
    a = m @ m.T / 40 + 0.1 * np.eye(40)
    b = rng.normal(size=40)
    matrix = tf.constant(a, tf.float32)
    solve = tf.function(lambda rhs: conjugate_gradient(lambda v: tf.linalg.matvec(matrix, v), rhs, iters, 0.0),
                        jit_compile=True)
    x, _, done = solve(tf.constant(b, tf.float32))
    expected = _numpy_cg(a, b, iters)
    assert int(done) == iters
    np.testing.assert_allclose(x.numpy(), expected, rtol=2e-3, atol=2e-3 * np.abs(expected).max())


def test_critic_fit_is_seeded_lowers_the_loss_and_allows_zero_epochs():
    obs = np.random.default_rng(0).normal(size=(1000, 6)).astype(np.float32)  # 1000 = 7 × 128 + 104 (dropped)
    returns = (obs[:, 0] * 2.0 + obs[:, 1]).astype(np.float32)
    weights = []
    for _ in range(2):
        _, critic = _models("gaussian")
        out = CriticTrainer(critic, learning_rate=1e-2, epochs=3, batch_size=128, jit_compile=True).fit(obs, returns, seed=5)
        assert out["value_loss_after"] < 0.8 * out["value_loss"]
        weights.append(flatten(critic.trainable_variables).numpy())
    np.testing.assert_array_equal(weights[0], weights[1])

    _, critic = _models("gaussian")
    before = flatten(critic.trainable_variables).numpy()
    out = CriticTrainer(critic, epochs=0, jit_compile=True).fit(obs, returns, seed=5)
    assert out["value_loss_after"] == out["value_loss"]
    np.testing.assert_array_equal(flatten(critic.trainable_variables).numpy(), before)
