"""``vector_env: workers`` (trpo_tf/process_rollout.py): worker processes that step their block of envs with
their own numpy actor give the in-process batch bit for bit (also where BLAS rounds a 2-row product
differently from a 4-row one, Walker2d-v5), and the same training run; they stay TensorFlow-free; a raising
env's exception and a killed worker reach the main process as clear errors."""

from __future__ import annotations

import functools
import os
import signal
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from diverging_env import diverging_cartpole
from robots import EnvFactory
from same_run import assert_same_run
from trpo_tf import TRPOConfig
from trpo_tf.acting import NumpyActor
from trpo_tf.app.training import make_trainer
from trpo_tf.models import build_models
from trpo_tf.process_rollout import ProcessRolloutCollector, RolloutWorkerError
from trpo_tf.rollout import RolloutCollector

ARRAYS = ("obs", "actions", "rewards", "terminated", "truncated", "last_obs", "final_index", "final_obs")


def _actor(env_fn, seed: int = 0):
    probe = env_fn()
    actor, _ = build_models(probe.observation_space, probe.action_space, [64, 64], init_log_std=-0.5)
    probe.close()
    actor.normalizer.update(np.random.default_rng(seed).normal(0.5, 2.0, size=(64, actor.normalizer.obs_dim)))
    return actor


def _assert_same(a, b) -> None:
    for key in ARRAYS:
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
    assert sorted(a.episode_returns) == sorted(b.episode_returns)
    assert sorted(a.episode_lengths) == sorted(b.episode_lengths)
    assert sorted(a.episode_successes) == sorted(b.episode_successes)


@pytest.mark.parametrize("gym_id, kwargs, n_envs", [
    ("Walker2d-v5", {"max_episode_steps": 50}, 4),  # Gaussian, falls and time limits; 2 + 2 rows (see docstring)
    ("CartPole-v1", {"max_episode_steps": 15}, 3),  # categorical actions, blocks of 2 + 1
    ("robots/GripperReach-v0", {"max_episode_steps": 20}, 4),  # is_success in the final infos
])
def test_worker_batches_equal_in_process_batches(gym_id, kwargs, n_envs):
    env_fn = EnvFactory(gym_id, kwargs)
    actor = _actor(env_fn)
    acting = NumpyActor(actor)
    in_process = RolloutCollector(gym.vector.SyncVectorEnv([env_fn] * n_envs, autoreset_mode=AutoresetMode.SAME_STEP),
                                  acting, seed=5)
    workers = ProcessRolloutCollector(env_fn, n_envs, acting, seed=5, n_workers=2)
    try:
        assert len(workers.blocks) == 2 and sum(workers.blocks) == n_envs
        for iteration in range(3):
            a = in_process.collect(60, np.random.default_rng(iteration))
            b = workers.collect(60, np.random.default_rng(iteration))
            _assert_same(a, b)
            assert len(a.final_index) > 0 or a.terminated.any()
            for layer in actor.hidden:  # new weights for the next iteration: the workers must get them
                layer.kernel.assign(layer.kernel * 1.1)
            acting.refresh(actor)
        assert set(workers.last_timing) >= {"wall_s", "worker_busy_s", "overhead_s"}
    finally:
        in_process.close()
        workers.close()


def test_workers_are_tensorflow_free_one_per_core_and_gone_after_close():
    env_fn = EnvFactory("CartPole-v1")
    collector = ProcessRolloutCollector(env_fn, 8, NumpyActor(_actor(env_fn)), seed=0)
    processes = list(collector.processes)
    try:
        assert len(collector.blocks) == min(8, os.cpu_count() or 1) and sum(collector.blocks) == 8
        assert all(not info["tensorflow_loaded"] for info in collector.infos)
        assert {info["pid"] for info in collector.infos} == {p.pid for p in processes}
        assert collector.random_steps_per_s(20) > 0
    finally:
        collector.close()
    assert not any(p.is_alive() for p in processes)


def test_a_raising_env_in_a_worker_raises_its_exception_in_the_main_process_with_the_worker_traceback():
    env_fn = functools.partial(diverging_cartpole, 7, os.getpid())  # diverges in the worker only
    collector = ProcessRolloutCollector(env_fn, 2, NumpyActor(_actor(EnvFactory("CartPole-v1"))), seed=0,
                                        n_workers=2)
    try:
        with pytest.raises(ValueError, match="contact solver diverged at step 7") as info:
            collector.collect(20, np.random.default_rng(0))
        cause = info.value.__cause__
        assert isinstance(cause, RolloutWorkerError)
        assert f"in rollout worker 1 (pid {collector.processes[0].pid})" in str(cause)
        assert "diverging_env.py" in str(cause) and "raise ValueError" in str(cause)  # the worker's traceback
    finally:
        collector.close()


def test_a_killed_worker_is_a_one_line_error_naming_it():
    env_fn = EnvFactory("CartPole-v1")
    collector = ProcessRolloutCollector(env_fn, 2, NumpyActor(_actor(env_fn)), seed=0, n_workers=2)
    try:
        collector.collect(10, np.random.default_rng(0))
        pid = collector.processes[0].pid
        os.kill(pid, signal.SIGKILL)
        collector.processes[0].join(timeout=10)
        with pytest.raises(RolloutWorkerError, match=rf"rollout worker 1 \(pid {pid}\) died with exit code -9"):
            collector.collect(10, np.random.default_rng(1))
    finally:
        collector.close()


def test_training_with_workers_is_the_same_run_as_in_process(tmp_path: Path):
    small = dict(task="Walker2d-v5", total_steps=1536, n_steps=128, n_envs=4, eval_episodes=0, critic_epochs=2,
                 critic_batch_size=64, checkpoint_every=1, keep_checkpoints=10, normalize_reward=True,
                 jit_compile=False, hidden_sizes=[32, 32])
    for mode in ("sync", "workers"):
        make_trainer(TRPOConfig(**small, vector_env=mode), tmp_path / mode, progress=False).train()
    assert_same_run(tmp_path / "sync", tmp_path / "workers")
