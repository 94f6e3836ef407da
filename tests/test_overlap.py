"""``overlap_critic``: the critic fit of iteration k beside its policy step and the env steps of k+1 gives the
numbers of the fused loop — the same checkpoints (every variable, the RNG state, the counters) and metrics
rows — also across a stop and a resume; an error in the background fit surfaces at the join."""

from __future__ import annotations

import threading
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from trpo_tf import TRPOConfig, resume
from trpo_tf.app.training import make_trainer, resume_trainer
from trpo_tf.critic import CriticTrainer
from trpo_tf.models import Critic, ObservationNormalizer
from trpo_tf.monitor import read_metrics
from trpo_tf.overlap import PendingCriticFit
from trpo_tf.run_dir import RunDir

from same_run import assert_same_run, checkpoints

SMALL = dict(total_steps=1024, n_steps=128, n_envs=2, eval_episodes=0, critic_epochs=2, critic_batch_size=64,
             checkpoint_every=1, keep_checkpoints=10, normalize_reward=True, jit_compile=False)


def _train(run_dir: Path, stop_after: int | None = None, **overrides) -> dict:
    trainer = make_trainer(TRPOConfig(**{**SMALL, **overrides}), run_dir, progress=False)
    stop = None if stop_after is None else (lambda row, acting: int(row["iteration"]) >= stop_after)
    return trainer.train(callback=stop)


@pytest.mark.parametrize("task", ["CartPole-v1", "Pendulum-v1"])
def test_overlapped_loop_equals_the_fused_loop_bit_for_bit(tmp_path: Path, task: str) -> None:
    _train(tmp_path / "overlap", task=task, overlap_critic=True)
    _train(tmp_path / "fused", task=task, overlap_critic=False)
    assert_same_run(tmp_path / "overlap", tmp_path / "fused")
    assert "critic_wait_s" in read_metrics(RunDir(tmp_path / "overlap").metrics)[0]


def test_a_stopped_and_resumed_overlapped_run_equals_the_fused_one(tmp_path: Path) -> None:
    """The overlapped run is stopped by its callback after iteration 2, when batch 3 has been collected (its
    draws from the run's generator must not reach checkpoint 2); the fused run stops at total_steps there.
    Both resume (new env seeds at the resume, alike on both sides) and must agree to the end."""
    _train(tmp_path / "overlap", task="CartPole-v1", stop_after=2, overlap_critic=True)
    _train(tmp_path / "fused", task="CartPole-v1", overlap_critic=False, total_steps=512)
    assert_same_run(tmp_path / "overlap", tmp_path / "fused")  # checkpoints 1-2, rows 1-2
    resume(tmp_path / "overlap", total_steps=1024, progress=False)
    resume(tmp_path / "fused", total_steps=1024, progress=False)
    assert_same_run(tmp_path / "overlap", tmp_path / "fused")


def test_an_error_in_the_critic_thread_is_raised_at_the_join_with_its_traceback() -> None:
    critic = Critic(ObservationNormalizer(3), [8])
    critic(tf.zeros((1, 3)))
    trainer = CriticTrainer(critic, epochs=1, batch_size=4, jit_compile=False)
    joined = []
    fit = PendingCriticFit(trainer, np.zeros((8, 5), np.float32), np.zeros(8, np.float32), seed=0,
                           after_join=lambda: joined.append(True))  # 5 features for a 3-input critic
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError)) as info:
        fit.join()
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "_run" in frames and "join" in frames  # the thread's frames and the joining one
    assert not joined  # the statistics of a failed iteration are never assigned


def test_a_failed_background_fit_stops_the_run_before_its_row_and_checkpoint(tmp_path: Path) -> None:
    """A real TF error in the first critic fit (its minibatch order indexes past the batch): train() raises
    it, nothing of iteration 1 is written, and a resume redoes the run from the start."""
    trainer = make_trainer(TRPOConfig(**{**SMALL, "task": "CartPole-v1", "overlap_critic": True}),
                           tmp_path / "run", progress=False)
    trainer.algorithm.wait_precompile()  # (it calls the fit too)
    critic_trainer = trainer.algorithm.critic_trainer
    real_order = critic_trainer.minibatch_order
    critic_trainer.minibatch_order = lambda n, seed: real_order(n, seed) + n  # out of range: the gather fails
    with pytest.raises(tf.errors.InvalidArgumentError):
        trainer.train()
    run = RunDir(tmp_path / "run")
    assert not run.metrics.exists() or read_metrics(run.metrics) == []
    assert not list((tmp_path / "run" / "checkpoints").glob("ckpt-*.index"))
    resume_trainer(tmp_path / "run", progress=False).train()
    assert [int(r["iteration"]) for r in read_metrics(run.metrics)] == [1, 2, 3, 4]


def test_the_fit_runs_beside_the_policy_step_and_a_failing_step_waits_for_it(tmp_path: Path) -> None:
    """The critic fit starts before the policy step (so it takes the core the step leaves free); when the step
    fails, its error reaches train() only after the fit's thread has ended, and nothing of the iteration is
    written."""
    trainer = make_trainer(TRPOConfig(**{**SMALL, "task": "CartPole-v1", "overlap_critic": True}),
                           tmp_path / "run", progress=False)
    trainer.algorithm.wait_precompile()
    critic_trainer = trainer.algorithm.critic_trainer
    real_fit, fit_started, fit_ended = critic_trainer.fit, threading.Event(), threading.Event()

    def slow_fit(*args, **kwargs):  # the real fit, made to outlast the failing step
        fit_started.set()
        time.sleep(0.5)
        try:
            return real_fit(*args, **kwargs)
        finally:
            fit_ended.set()

    def failing_step(*args, **kwargs):
        seen.append(fit_started.wait(timeout=10))  # never set if the fit started only after the step
        raise RuntimeError("the policy step failed")

    seen: list[bool] = []
    critic_trainer.fit, trainer.algorithm.policy_step = slow_fit, failing_step
    with pytest.raises(RuntimeError, match="the policy step failed"):
        trainer.train()
    assert seen == [True] and fit_ended.is_set()
    run = RunDir(tmp_path / "run")
    assert not run.metrics.exists() or read_metrics(run.metrics) == []


def test_with_xla_the_overlapped_loop_stays_within_float_noise_of_the_fused_one(tmp_path: Path) -> None:
    """XLA compiles the policy step and the critic fit apart here and together in the fused update; it may
    fuse them differently, so this compares within a tight tolerance. Found on 2026-11-21 (TF 2.21): identical
    bit for bit on Pendulum (4 iterations, every checkpoint and row)."""
    xla = dict(task="Pendulum-v1", total_steps=512, jit_compile=True)
    _train(tmp_path / "overlap", overlap_critic=True, **xla)
    _train(tmp_path / "fused", overlap_critic=False, **xla)
    ckpt_a, ckpt_b = checkpoints(tmp_path / "overlap"), checkpoints(tmp_path / "fused")
    assert ckpt_a.keys() == ckpt_b.keys() and ckpt_a
    for it in ckpt_a:
        for name, value in ckpt_a[it].items():
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                np.testing.assert_allclose(value, ckpt_b[it][name], rtol=1e-6, atol=1e-6, err_msg=f"{it} {name}")
            else:
                assert np.array_equal(value, ckpt_b[it][name]), (it, name)
