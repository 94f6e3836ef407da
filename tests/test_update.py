"""trpo_tf/update.py: the policy step and the critic fit side by side (two threads) or in ONE compiled call land
exactly where the two separate calls land, and a rejected policy step still leaves the actor bit-identical."""

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


@pytest.mark.parametrize("parallel", [False, True], ids=["fused", "parallel"])
@pytest.mark.parametrize("jit", [False, True])
def test_update_lands_bit_identically_where_the_separate_calls_land(jit, parallel):
    actor, critic, step, trainer, (obs, actions, adv, returns) = _setup(jit)
    sep_policy = step(obs, actions, adv, fisher_seed=3)
    sep_critic = trainer.fit(obs, returns, seed=7)
    separate = _weights(actor, critic, trainer)

    actor, critic, step, trainer, _ = _setup(jit)
    update = TRPOUpdate(step, trainer, jit_compile=jit, parallel=parallel)
    policy, critic_out = update(obs, actions, adv, returns, critic_seed=7, fisher_seed=3)
    assert policy["accepted"] and policy == sep_policy
    assert critic_out == sep_critic and critic_out["value_loss_after"] < critic_out["value_loss"]
    np.testing.assert_array_equal(_weights(actor, critic, trainer), separate)


def test_parallel_is_the_default_with_two_cpus_and_a_failing_fit_surfaces_after_the_step():
    from trpo_tf.update import usable_cpus

    actor, critic, step, trainer, (obs, actions, adv, returns) = _setup(True)
    assert TRPOUpdate(step, trainer).parallel == (usable_cpus() > 1)
    update = TRPOUpdate(step, trainer, parallel=True)
    with pytest.raises(ValueError, match="300 and 7"):  # the fit's own error (a trace-time shape check), here
        update(obs, actions, adv, returns[:7], critic_seed=0, fisher_seed=0)


@pytest.mark.parametrize("parallel", [False, True], ids=["fused", "parallel"])
def test_rejected_step_keeps_the_actor_bit_identical_and_still_fits_the_critic(parallel):
    actor, critic, step, trainer, (obs, actions, adv, returns) = _setup(True)
    actor_before = flatten(actor.trainable_variables).numpy()
    critic_before = flatten(critic.trainable_variables).numpy()
    update = TRPOUpdate(step, trainer, parallel=parallel)
    policy, critic_out = update(obs, actions, np.full_like(adv, np.nan), returns, critic_seed=0, fisher_seed=0)
    assert not policy["accepted"] and policy["status"] == 2
    np.testing.assert_array_equal(flatten(actor.trainable_variables).numpy(), actor_before)
    assert not np.array_equal(flatten(critic.trainable_variables).numpy(), critic_before)
    assert np.isfinite(critic_out["value_loss_after"])
    # same shapes, new values: the compiled update is traced once
    update(obs, actions, adv, returns, critic_seed=1, fisher_seed=1)
    compiled = [update._compiled] if not parallel else [step._compiled, trainer._fit]
    assert [c.experimental_get_tracing_count() for c in compiled] == [1] * len(compiled)
