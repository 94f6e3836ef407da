"""Models: distributions, initialization, the in-model observation normalizer, the numpy acting mirror."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from trpo_tf.acting import NumpyActor
from trpo_tf.models import ObservationNormalizer, build_models

OBS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)


def test_gaussian_actor_returns_diagonal_gaussian_with_state_independent_std():
    actor, critic = build_models(OBS, gym.spaces.Box(-2, 2, (3,), np.float32), [32, 32], init_log_std=-0.5)
    dist = actor(tf.random.normal((7, 4)))
    assert isinstance(dist, tfp.distributions.Distribution)
    assert dist.event_shape == (3,) and dist.batch_shape == (7,)
    np.testing.assert_allclose(dist.stddev().numpy(), np.exp(-0.5), rtol=1e-6)
    assert critic(tf.zeros((7, 4))).shape == (7,)
    # small last layer: the initial mean is close to zero whatever the observation
    assert np.abs(dist.mean().numpy()).max() < 0.2
    assert "actor/log_std" in [v.path for v in actor.trainable_variables]


def test_categorical_actor_returns_categorical():
    actor, _ = build_models(OBS, gym.spaces.Discrete(5), [16])
    dist = actor(tf.random.normal((6, 4)))
    assert isinstance(dist, tfp.distributions.Categorical)
    assert dist.probs_parameter().shape == (6, 5)
    assert actor.deterministic_action(tf.zeros((2, 4))).dtype == tf.int64


def test_unsupported_spaces_are_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match="1-D Box"):
        build_models(gym.spaces.Box(0, 1, (2, 2)), gym.spaces.Discrete(2), [8])
    with pytest.raises(ValueError, match="Discrete or a 1-D Box"):
        build_models(OBS, gym.spaces.MultiBinary(3), [8])


def test_normalizer_matches_numpy_over_several_batches():
    rng = np.random.default_rng(0)
    norm = ObservationNormalizer(3, clip=10.0)
    batches = [rng.normal(loc=[1.0, -5.0, 100.0], scale=[0.1, 2.0, 30.0], size=(n, 3)) for n in (10, 500, 37)]
    for b in batches:
        norm.update(b)
    everything = np.concatenate(batches)
    np.testing.assert_allclose(norm.mean.numpy(), everything.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(norm.var.numpy(), everything.var(axis=0), rtol=1e-4)
    assert float(norm.count.numpy()) == len(everything)
    x = rng.normal(size=(5, 3)) * 50
    expected = np.clip((x - everything.mean(0)) / np.sqrt(everything.var(0) + 1e-8), -10, 10)
    np.testing.assert_allclose(norm(tf.constant(x, tf.float32)).numpy(), expected, rtol=1e-4, atol=1e-4)


def test_normalizer_clips_and_is_frozen_between_updates():
    norm = ObservationNormalizer(2, clip=5.0)
    norm.update(np.array([[0.0, 0.0], [2.0, 2.0]]))
    out = norm(tf.constant([[1e6, -1e6]], tf.float32)).numpy()
    np.testing.assert_array_equal(out, [[5.0, -5.0]])
    before = norm.mean.numpy().copy()
    norm(tf.constant([[3.0, 3.0]]))  # calling never changes the statistics
    np.testing.assert_array_equal(norm.mean.numpy(), before)


def test_merged_statistics_are_what_update_assigns_and_reach_the_numpy_actor_unassigned():
    """``merged`` (the overlapped loop) computes without assigning; ``assign`` then equals ``update`` bit for
    bit, and a NumpyActor given the merged statistics acts as one refreshed after the assignment."""
    rng = np.random.default_rng(3)
    first, batch = rng.normal(2.0, 3.0, size=(50, 4)), rng.normal(-1.0, 0.5, size=(70, 4)).astype(np.float32)
    tf.keras.utils.set_random_seed(0)
    actor, _ = build_models(OBS, gym.spaces.Box(-1, 1, (2,), np.float32), [8])
    actor.normalizer.update(first)
    before = [v.numpy().copy() for v in actor.normalizer.variables]
    stats = actor.normalizer.merged(batch)
    for v, old in zip(actor.normalizer.variables, before):  # nothing assigned yet
        np.testing.assert_array_equal(v.numpy(), old)
    early = NumpyActor(actor)
    early.refresh(actor, stats)
    reference = ObservationNormalizer(4)
    reference.update(first)
    reference.update(batch)
    actor.normalizer.assign(stats)
    for mine, theirs in zip(actor.normalizer.variables, reference.variables):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    obs = rng.normal(size=(16, 4)).astype(np.float32)
    np.testing.assert_array_equal(early.deterministic(obs), NumpyActor(actor).deterministic(obs))
    assert ObservationNormalizer(4, enabled=False).merged(batch) is None
    assert actor.normalizer.merged(np.zeros((0, 4))) is None


def test_normalizer_is_shared_by_actor_and_critic():
    actor, critic = build_models(OBS, gym.spaces.Discrete(2), [8])
    assert actor.normalizer is critic.normalizer


@pytest.mark.parametrize("space", [gym.spaces.Box(-1, 1, (2,), np.float32), gym.spaces.Discrete(3)])
def test_checkpoint_round_trips_every_variable_and_optimizer_slot(tmp_path, space):
    """Keras 3 layers held only in a list are invisible to tf.train.Checkpoint: every weight must travel."""
    from trpo_tf.critic import CriticTrainer

    actor, critic = build_models(OBS, space, [8, 8])
    trainer = CriticTrainer(critic, jit_compile=False)
    trainer.fit(np.random.default_rng(0).normal(size=(256, 4)), np.ones(256), seed=1)
    actor.normalizer.update(np.arange(40, dtype=np.float64).reshape(10, 4))
    for v in actor.trainable_variables:
        v.assign(v + 0.25)
    path = tf.train.Checkpoint(actor=actor, critic=critic, opt=trainer.optimizer).save(str(tmp_path / "ckpt"))

    fresh_actor, fresh_critic = build_models(OBS, space, [8, 8])
    fresh_trainer = CriticTrainer(fresh_critic, jit_compile=False)
    tf.train.Checkpoint(actor=fresh_actor, critic=fresh_critic, opt=fresh_trainer.optimizer).restore(path) \
        .assert_consumed()
    before = actor.variables + critic.variables + trainer.optimizer.variables
    after = fresh_actor.variables + fresh_critic.variables + fresh_trainer.optimizer.variables
    assert len(before) == len(after)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


@pytest.mark.parametrize("space", [gym.spaces.Box(-1, 1, (2,), np.float32), gym.spaces.Discrete(3)])
def test_numpy_actor_matches_keras_actor(space):
    tf.keras.utils.set_random_seed(0)
    actor, _ = build_models(OBS, space, [32, 32])
    actor.normalizer.update(np.random.default_rng(1).normal(3.0, 2.0, size=(100, 4)))
    obs = np.random.default_rng(2).normal(3.0, 4.0, size=(64, 4)).astype(np.float32)
    mirror = NumpyActor(actor)
    expected = actor.deterministic_action(tf.constant(obs)).numpy()
    if isinstance(space, gym.spaces.Discrete):
        np.testing.assert_array_equal(mirror.deterministic(obs), expected)
    else:
        np.testing.assert_allclose(mirror.deterministic(obs), expected, atol=1e-5)


def test_numpy_actor_samples_follow_the_policy_distribution():
    tf.keras.utils.set_random_seed(0)
    actor, _ = build_models(OBS, gym.spaces.Box(-1, 1, (2,), np.float32), [16], init_log_std=-1.0)
    mirror = NumpyActor(actor)
    obs = np.zeros((20000, 4), np.float32)
    samples = mirror.sample(obs, np.random.default_rng(0))
    np.testing.assert_allclose(samples.std(axis=0), np.exp(-1.0), rtol=0.03)
    # log-probs of our samples under the TF distribution are as typical as TF's own samples
    dist = actor(tf.constant(obs[:2000]))
    ours = dist.log_prob(samples[:2000]).numpy().mean()
    theirs = dist.log_prob(dist.sample(seed=1)).numpy().mean()
    assert ours == pytest.approx(theirs, abs=0.1)


def test_numpy_actor_categorical_sampling_frequencies():
    tf.keras.utils.set_random_seed(0)
    actor, _ = build_models(OBS, gym.spaces.Discrete(3), [8])
    actor.logits_head.bias.assign([0.0, 1.0, 2.0])
    obs = np.zeros((30000, 4), np.float32)
    counts = np.bincount(NumpyActor(actor).sample(obs, np.random.default_rng(0)), minlength=3) / len(obs)
    probs = actor(tf.constant(obs[:1])).probs_parameter().numpy()[0]
    np.testing.assert_allclose(counts, probs, atol=0.01)
