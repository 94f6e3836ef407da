"""trpo_tf/update.py: the policy step and the critic fit in ONE compiled call land exactly where the two
separate calls land, and a rejected policy step still leaves the actor bit-identical."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from trpo_tf.critic import CriticTrainer
from trpo_tf.models import build_models
from trpo_tf.trpo import TRPOPolicyStep, TRPOStepSettings, flatten
from trpo_tf.update import TRPOUpdate

OBS = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)


def _setup(jit: bool):
    tf.keras.utils.set_random_seed(0)
    actor, critic = build_models(OBS, ACT, [16, 16])
    step = TRPOPolicyStep(actor, TRPOStepSettings(cg_iters=4, fisher_subsample=2), jit_compile=jit)
    trainer = CriticTrainer(critic, 1e-2, epochs=2, batch_size=64, jit_compile=jit)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(300, 5)).astype(np.float32)
    actions = actor(obs).sample(seed=1).numpy()
    adv = (actions[:, 0] + 0.1 * rng.normal(size=300)).astype(np.float32)
    returns = (obs[:, 0] + obs[:, 1]).astype(np.float32)
    return actor, critic, step, trainer, (obs, actions, adv, returns)


def _weights(actor, critic, trainer) -> np.ndarray:
    variables = list(actor.variables) + list(critic.variables) + list(trainer.optimizer.variables)
    return np.concatenate([np.ravel(v.numpy()).astype(np.float64) for v in variables])


@pytest.mark.parametrize("jit", [False, True])
def test_fused_update_lands_bit_identically_where_the_separate_calls_land(jit):
    actor, critic, step, trainer, (obs, actions, adv, returns) = _setup(jit)
    sep_policy = step(obs, actions, adv, fisher_seed=3)
    sep_critic = trainer.fit(obs, returns, seed=7)
    separate = _weights(actor, critic, trainer)

    actor, critic, step, trainer, _ = _setup(jit)
    fused_policy, fused_critic = TRPOUpdate(step, trainer, jit_compile=jit)(obs, actions, adv, returns,
                                                                             critic_seed=7, fisher_seed=3)
    assert fused_policy["accepted"] and fused_policy == sep_policy
    assert fused_critic == sep_critic and fused_critic["value_loss_after"] < fused_critic["value_loss"]
    np.testing.assert_array_equal(_weights(actor, critic, trainer), separate)


def test_rejected_step_keeps_the_actor_bit_identical_and_still_fits_the_critic():
    actor, critic, step, trainer, (obs, actions, adv, returns) = _setup(True)
    actor_before = flatten(actor.trainable_variables).numpy()
    critic_before = flatten(critic.trainable_variables).numpy()
    update = TRPOUpdate(step, trainer)
    policy, critic_out = update(obs, actions, np.full_like(adv, np.nan), returns, critic_seed=0, fisher_seed=0)
    assert not policy["accepted"] and policy["status"] == 2
    np.testing.assert_array_equal(flatten(actor.trainable_variables).numpy(), actor_before)
    assert not np.array_equal(flatten(critic.trainable_variables).numpy(), critic_before)
    assert np.isfinite(critic_out["value_loss_after"])
    # same shapes, new values: the compiled update is traced once
    update(obs, actions, adv, returns, critic_seed=1, fisher_seed=1)
    assert update._compiled.experimental_get_tracing_count() == 1
