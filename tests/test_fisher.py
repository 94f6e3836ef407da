"""trpo_tf/fisher.py: the Fisher product from per-sample layer Jacobians equals the autodiff Gauss-Newton one
for every actor layout the models build, and actors that are not a plain Dense chain fall back to autodiff."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from trpo_tf.fisher import Linearization, dense_chain, layer_jacobian_fvp
from trpo_tf.models import build_models
from trpo_tf.trpo import TRPOPolicyStep, TRPOStepSettings, flatten, gauss_newton_fvp

OBS = gym.spaces.Box(-np.inf, np.inf, (7,), np.float32)


def _actor(action_space: gym.Space, hidden: list[int], activation: str):
    tf.keras.utils.set_random_seed(0)
    actor, _ = build_models(OBS, action_space, hidden, activation)
    rng = np.random.default_rng(0)
    actor.normalizer.update(rng.normal(2.0, 3.0, size=(500, 7)))  # the product sees normalized inputs
    return actor


@pytest.mark.parametrize("action_space, hidden, activation", [
    (gym.spaces.Box(-1.0, 1.0, (3,), np.float32), [32, 32], "tanh"),
    (gym.spaces.Box(-1.0, 1.0, (2,), np.float32), [16, 8, 8], "relu"),
    (gym.spaces.Box(-1.0, 1.0, (4,), np.float32), [], "tanh"),
    (gym.spaces.Discrete(5), [24], "elu"),
    (gym.spaces.Discrete(3), [16, 16, 16], "tanh"),
], ids=["gaussian-2-tanh", "gaussian-3-relu", "gaussian-linear", "categorical-1-elu", "categorical-3-tanh"])
def test_layer_jacobian_product_equals_the_autodiff_product(action_space, hidden, activation):
    actor = _actor(action_space, hidden, activation)
    chain = dense_chain(actor)
    assert chain is not None and len(chain.hidden) == len(hidden)
    fixed = [v.value for v in actor.non_trainable_variables]

    def policy(p, x):
        return actor.stateless_call(p, fixed, x)[0]

    # θ_old away from the initialization, so the check is not at a special point.
    params = [v.value + 0.3 * tf.random.stateless_normal(v.shape, seed=[i, 5])
              for i, v in enumerate(actor.trainable_variables)]
    obs = tf.constant(np.random.default_rng(1).normal(2.0, 4.0, size=(300, 7)).astype(np.float32))
    rng = np.random.default_rng(2)
    for _ in range(3):
        v = tf.constant(rng.normal(size=flatten(params).shape[0]).astype(np.float32))
        reference = gauss_newton_fvp(policy, params, obs, damping=0.05)(v).numpy()
        layers = layer_jacobian_fvp(actor, chain, params, obs, damping=0.05)(v).numpy()
        np.testing.assert_allclose(layers, reference, rtol=1e-4, atol=1e-5 * np.abs(reference).max())


def test_an_actor_with_a_frozen_layer_is_not_a_chain_and_its_step_uses_autodiff():
    actor = _actor(gym.spaces.Box(-1.0, 1.0, (2,), np.float32), [16, 16], "tanh")
    actor.hidden[0].trainable = False  # its kernel and bias are no longer parameters of the step
    assert dense_chain(actor) is None
    rng = np.random.default_rng(3)
    obs = rng.normal(size=(256, 7)).astype(np.float32)
    actions = actor(obs).sample(seed=1).numpy()
    adv = (actions[:, 0] + 0.1 * rng.normal(size=256)).astype(np.float32)
    frozen = actor.hidden[0].kernel.numpy().copy()
    info = TRPOPolicyStep(actor, TRPOStepSettings(cg_iters=5), jit_compile=False)(obs, actions, adv)
    assert info["accepted"], info["reason"]
    np.testing.assert_array_equal(actor.hidden[0].kernel.numpy(), frozen)


@pytest.mark.parametrize("action_space", [gym.spaces.Box(-1.0, 1.0, (3,), np.float32), gym.spaces.Discrete(4)],
                         ids=["gaussian", "categorical"])
def test_the_gradient_through_the_layer_jacobians_equals_autodiff(action_space):
    actor = _actor(action_space, [32, 16], "tanh")
    fixed = [v.value for v in actor.non_trainable_variables]
    params = [v.value + 0.2 * tf.random.stateless_normal(v.shape, seed=[i, 9])
              for i, v in enumerate(actor.trainable_variables)]
    rng = np.random.default_rng(4)
    obs = tf.constant(rng.normal(2.0, 4.0, size=(300, 7)).astype(np.float32))
    actions = actor(obs).sample(seed=2)
    adv = tf.constant(rng.normal(size=300).astype(np.float32))

    def objective(dist):
        return tf.reduce_mean(tf.exp(dist.log_prob(actions)) * adv)

    with tf.GradientTape() as tape:
        tape.watch(params)
        value = objective(actor.stateless_call(params, fixed, obs)[0])
    reference = flatten(tape.gradient(value, params)).numpy()
    layered_value, layered = Linearization(actor, dense_chain(actor), params, obs).gradient(objective)
    np.testing.assert_allclose(layered.numpy(), reference, rtol=1e-4, atol=1e-5 * np.abs(reference).max())
    assert abs(float(layered_value) - float(value)) <= 1e-5 * abs(float(value)) + 1e-7
