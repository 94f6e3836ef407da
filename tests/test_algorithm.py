"""The TRPO algorithm object and its wiring in the runner: a real batch in, diagnostics out; the observation
normalizer starts from observations collected before the first update; the reward scaler's state survives a
checkpoint; runs written by version 0.1.0 still load, export and resume."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from trpo_tf import TRPOConfig, load_policy
from trpo_tf.acting import NumpyActor
from trpo_tf.algorithm import TRPO
from trpo_tf.app.training import make_trainer, resume_trainer
from trpo_tf.monitor import read_metrics
from trpo_tf.rollout import RolloutCollector, make_vector_env
from trpo_tf.run_dir import RunDir

import robots  # noqa: E402  (after TensorFlow: tests/conftest.py)

OLD_RUN = Path(__file__).parent / "data" / "run-0.1.0"  # Pendulum-v1, 2 envs x 128 steps, written by 0.1.0
FAST = dict(n_envs=2, n_steps=128, vector_env="sync", jit_compile=False, critic_epochs=1, eval_episodes=0)


def _collector(task: str, actor, n_envs: int, seed: int) -> RolloutCollector:
    make_env = robots.resolve_task(task).env_factory()
    return RolloutCollector(make_vector_env(make_env, n_envs, "sync"), NumpyActor(actor), seed=seed)


def test_update_takes_a_real_batch_and_returns_diagnostics():
    config = TRPOConfig(task="Pendulum-v1", **FAST)
    env = robots.make_env("Pendulum-v1")
    algo = TRPO(env.observation_space, env.action_space, config)
    env.close()
    collector = _collector("Pendulum-v1", algo.actor, 2, seed=1)
    try:
        batch = collector.collect(128, np.random.default_rng(0))
    finally:
        collector.close()
    before = algo.normalizer.numpy_params()[0].copy()
    out = algo.update(batch, critic_seed=0)
    assert 0.0 <= out["kl"] <= config.max_kl and out["accepted"] in (True, False)
    assert np.isfinite(out["value_loss"]) and out["policy_s"] > 0 and out["update_s"] > 0 and out["gae_s"] > 0
    assert "critic_s" not in out  # the critic fit runs inside the one compiled update (trpo_tf/update.py)
    assert not np.allclose(algo.normalizer.numpy_params()[0], before)  # statistics updated after the fits


@pytest.mark.parametrize("jit", [False, True])
def test_background_precompile_changes_nothing_the_update_computes(jit):
    """The zero-batch update run by ``start_precompile`` leaves every weight and Adam slot as it was: an
    update after it lands bit for bit where an update without it lands."""
    config = TRPOConfig(task="Pendulum-v1", **{**FAST, "jit_compile": jit})
    env = robots.make_env("Pendulum-v1")
    states = []
    for precompile in (False, True):
        keras.utils.set_random_seed(0)
        algo = TRPO(env.observation_space, env.action_space, config)
        if precompile:
            algo.start_precompile(config.batch_size)
        collector = _collector("Pendulum-v1", algo.actor, 2, seed=1)
        try:
            batch = collector.collect(128, np.random.default_rng(0))
        finally:
            collector.close()
        out = algo.update(batch, critic_seed=3, fisher_seed=4)
        assert out["accepted"]
        variables = list(algo.actor.variables) + list(algo.critic.variables) \
            + list(algo.critic_trainer.optimizer.variables)
        states.append([v.numpy() for v in variables])
    env.close()
    for a, b in zip(*states):
        np.testing.assert_array_equal(a, b)


def test_config_reaches_the_policy_step_and_the_fisher_seed_is_honoured():
    config = TRPOConfig(task="Pendulum-v1", accept_ratio=0.5, fisher_subsample=4, **FAST)
    env = robots.make_env("Pendulum-v1")
    algos = [TRPO(env.observation_space, env.action_space, config) for _ in range(3)]
    env.close()
    assert algos[0].policy_step.settings.accept_ratio == 0.5 and algos[0].policy_step.settings.fisher_subsample == 4
    for algo in algos[1:]:  # the same initial weights in all three
        for a, b in zip(algo.actor.variables, algos[0].actor.variables):
            a.assign(b)
        for a, b in zip(algo.critic.variables, algos[0].critic.variables):
            a.assign(b)
    collector = _collector("Pendulum-v1", algos[0].actor, 2, seed=1)
    try:
        batch = collector.collect(128, np.random.default_rng(0))
    finally:
        collector.close()
    out = [algo.update(batch, critic_seed=0, fisher_seed=seed) for algo, seed in zip(algos, (7, 7, 8))]
    assert out[0]["kl"] == out[1]["kl"] and out[0]["surrogate_improvement"] == out[1]["surrogate_improvement"]
    assert out[0]["kl"] != out[2]["kl"]  # another random quarter of the batch for the Fisher products


def test_the_first_batch_is_normalized_by_statistics_collected_before_the_first_update(tmp_path):
    """Hopper's first observation entry is the torso height (≈ 1.25 m): under identity statistics the first
    batch would reach the policy un-normalized, and iteration 1 would then jump to its statistics unchecked."""
    trainer = make_trainer(TRPOConfig(task="hopper", **FAST), tmp_path / "run", progress=False)
    collector = _collector("hopper", trainer.actor, 2, seed=99)  # what the runner's first collect sees
    try:
        obs = collector.collect(128, np.random.default_rng(5)).obs.reshape(-1, 11)
    finally:
        collector.close()
    normalized = trainer.actor.normalizer(obs).numpy()
    assert abs(float(np.mean(obs[:, 0])) - 1.25) < 0.1  # the raw height
    assert abs(float(np.mean(normalized[:, 0]))) < 1.0, np.mean(normalized, axis=0)
    assert np.all(np.abs(np.mean(normalized, axis=0)) < 3.0)


def test_reward_scaler_state_is_checkpointed_and_restored(tmp_path):
    config = TRPOConfig(task="Pendulum-v1", total_steps=512, normalize_reward=True, **FAST)
    trainer = make_trainer(config, tmp_path / "run", progress=False)
    trainer.train()
    saved = trainer.algorithm.reward_scaler.state()
    assert np.any(saved["discounted"] != 0.0)
    again = resume_trainer(tmp_path / "run", total_steps=768, progress=False)
    restored = again.algorithm.reward_scaler.state()
    np.testing.assert_array_equal(restored["discounted"], saved["discounted"])
    assert (restored["count"], restored["mean"], restored["var"]) == (saved["count"], saved["mean"], saved["var"])


def test_a_run_written_by_version_0_1_0_loads_evaluates_and_resumes(tmp_path):
    run = tmp_path / "old"
    shutil.copytree(OLD_RUN, run)
    policy = load_policy(run)
    assert policy.iteration == 2 and policy.env_steps == 512
    assert policy.act(np.zeros(3, np.float32)).shape == (1,)
    trainer = resume_trainer(run, total_steps=768, progress=False)  # reward returns restart at zero
    trainer.train()
    rows = read_metrics(RunDir(run).metrics)
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3]
    assert np.isnan(rows[-1]["linesearch_success"])  # the old columns stay, empty in new rows
    assert np.isnan(rows[-1]["critic_s"]) and not np.isnan(rows[0]["critic_s"])
    assert load_policy(run).env_steps == 768
