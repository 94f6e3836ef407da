"""The training loop (seed 004, "Full Algorithm"): collect → :class:`trpo_tf.algorithm.TRPO` update, per
iteration, with metrics, TensorBoard, checkpoints and resume around it. The runner gets an env FACTORY and a
:class:`~trpo_tf.run_dir.TaskDescription`, never a task name (the app resolves names through ``robots``).

Crash safety: each iteration first appends its metrics row (fsynced), then saves a checkpoint with
``tf.train.CheckpointManager`` (TF writes the files, then atomically rewrites the ``checkpoint`` index, so a
half-written checkpoint is never listed). Resume restores the newest intact checkpoint, chosen from the files
themselves (:mod:`trpo_tf.checkpoint_files`: a missing or damaged index is rebuilt), and drops metrics rows
written after it, so rows are neither duplicated nor missing. A Trainer holds the run directory's lock
(:mod:`trpo_tf.run_lock`) from just before it first writes until ``train()`` returns.

With ``overlap_critic`` (:mod:`trpo_tf.overlap`) iteration k ends in two parts: its policy step, then its
critic fit in a background thread while batch k+1 is collected with (θ_{k+1}, stats_{k+1}); after that
collection the fit is joined, the statistics assigned, and row k and checkpoint k written — in the order
above, with the generator's state as iteration k left it (before collection k+1 drew from it) and the
counters of k. Same batches, weights, draws and checkpoints as without overlap. A crash during collection
k+1 loses iteration k's unwritten row and checkpoint: the resume redoes iteration k from checkpoint k−1.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

from trpo_tf.acting import NumpyActor
from trpo_tf.algorithm import TRPO
from trpo_tf.checkpoint_files import newest_intact, rewrite_index
from trpo_tf.config import TRPOConfig
from trpo_tf.env_check import EnvProbe
from trpo_tf.episodes import run_episodes
from trpo_tf.files import write_json_atomic
from trpo_tf.interrupts import deferred_interrupts, interrupt_requested
from trpo_tf.monitor import HealthCheck, MetricsCSV, Progress
from trpo_tf.overlap import PendingCriticFit
from trpo_tf.process_rollout import ProcessRolloutCollector
from trpo_tf.rollout import RolloutBatch, RolloutCollector, make_vector_env
from trpo_tf.run_dir import RunDir, RunDirError, RunInfo, TaskDescription
from trpo_tf.run_lock import RunLock, is_lock_file, lock_run_for_training

log = logging.getLogger("trpo_tf")

NORMALIZER_WARMUP_OBS = 2048  # observations of the initial policy that start the normalizer's statistics


class ScalarLog:
    """TensorBoard scalars of a metrics row as ONE serialized ``Summary`` proto, written by one eager op
    (``tf.summary.experimental.write_raw_pb``). The proto holds what ``tf.summary.scalar`` writes (a float32
    scalar tensor tagged for the scalars plugin), so TensorBoard reads the same tags, steps and values. An eager
    ``tf.summary.scalar`` per column cost ~0.5 ms each (~16 ms per row at load 13), and a ``tf.function`` over
    the columns had to be traced for each set of finite columns (0.4-0.8 s each; issue 13)."""

    _METADATA = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))

    def __init__(self, logdir: str) -> None:
        self.writer = tf.summary.create_file_writer(logdir)

    def write(self, row: dict[str, Any], step: int) -> None:
        """The row's finite numbers (bools as 0/1), at ``step``; other columns are left out."""
        summary = summary_pb2.Summary(value=[
            summary_pb2.Summary.Value(tag=key, metadata=self._METADATA, tensor=tensor_pb2.TensorProto(
                dtype=types_pb2.DT_FLOAT, tensor_shape=tensor_shape_pb2.TensorShapeProto(), float_val=[value]))
            for key, value in row.items() if isinstance(value, (int, float)) and math.isfinite(value)])
        with self.writer.as_default(step=step):
            tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step)

    def close(self) -> None:
        self.writer.close()


class Trainer:
    """One training run in one run directory (new, or resumed from its newest checkpoint)."""

    def __init__(self, config: TRPOConfig, run_dir: str | Path, make_env: Callable[[], gym.Env],
                 task: TaskDescription, resume: bool = False, progress: bool = True,
                 make_eval_env: Callable[[], gym.Env] | None = None, probe: EnvProbe | None = None) -> None:
        """``make_env`` builds one env (picklable, for subprocess workers); ``task`` describes it for
        run.json. ``resume=True`` continues ``run_dir`` (checked by the caller with ``RunDir.check``).
        ``make_eval_env`` builds the final evaluation's env (default ``make_env``; a randomized run
        evaluates on the nominal env). ``probe``: the env already opened and checked by the caller (its
        spaces and description); without it the Trainer opens one env from ``make_env`` itself."""
        self.run = RunDir(run_dir)
        if self.run.path.is_dir():
            RunLock.check_free(self.run.path)  # a busy run: name its writer, before anything else
        if not resume and self.run.path.exists() and not self.run.path.is_dir():
            raise RunDirError(f"--out {self.run.path} is an existing file; give a directory for the new run")
        if not resume and self.run.path.exists() and any(not is_lock_file(p) for p in self.run.path.iterdir()):
            raise RunDirError(f"{self.run.path} already exists and is not empty; use --resume or a new --out")
        self.config = config.validate()
        if config.vector_env == "ray":  # reach the cluster (or fail in one line) before anything is written
            from trpo_tf.ray_rollout import connect

            connect(config.ray_address or None,
                    max(os.cpu_count() or 1, math.ceil(config.ray_workers * config.ray_cpus_per_worker)))
        self.progress_enabled = progress
        self.make_env, self.task = make_env, task
        self.make_eval_env = make_eval_env if make_eval_env is not None else make_env

        if probe is None:  # user-caused env failures: EnvSetupError
            probe = EnvProbe.open(make_env, task, config.env_kwargs)
        self.info = probe.info
        obs_space, act_space = probe.observation_space, probe.action_space

        self.lock = lock_run_for_training(self.run.path, resume)  # held until train() returns
        try:
            self._build(config, obs_space, act_space, resume)
        except BaseException:
            self.lock.release()
            raise

    def _build(self, config: TRPOConfig, obs_space: gym.Space, act_space: gym.Space, resume: bool) -> None:
        keras.utils.set_random_seed(config.seed)
        self.algorithm = TRPO(obs_space, act_space, config)
        self.actor, self.critic = self.algorithm.actor, self.algorithm.critic
        self.rng = np.random.default_rng(config.seed)
        self.collector_timing: list[dict[str, float]] = []  # Ray: broadcast + gather vs workers' busy time

        # Everything a resume needs, in one checkpoint.
        self.counters = tf.Variable([0, 0], dtype=tf.int64, trainable=False)  # iteration, env steps
        self.rng_state = tf.Variable("", dtype=tf.string, trainable=False)
        self.checkpoint = tf.train.Checkpoint(counters=self.counters, rng_state=self.rng_state,
                                              **self.algorithm.checkpoint_objects())
        self.metrics = MetricsCSV(self.run.metrics)
        choice = newest_intact(self.run.checkpoints, verify_older=True) if resume else None
        if choice is not None and choice.path is not None:
            self._restore(choice.path)
            if not choice.index_ok:  # missing or damaged index: rebuilt from the verified files
                for prefix, why in choice.skipped:
                    log.warning("skipped damaged checkpoint %s: %s", prefix, why)
                rewrite_index(self.run.checkpoints, choice)
                log.warning("rebuilt %s/checkpoint from the checkpoint files", self.run.checkpoints)
        elif resume:  # killed before the first checkpoint: nothing was kept, start over in place
            self.metrics.truncate_after(0, max_dropped=config.checkpoint_every)
            (self.run.checkpoints / "checkpoint").unlink(missing_ok=True)  # an index of nothing, maybe damaged
        else:
            self.run.path.mkdir(parents=True, exist_ok=True)
            config.save(self.run.config)
            self.run.write_info(self.info)
        # Compile the update in the background while envs start, the normalizer warms up and the first
        # batch is collected (the first update waits for it; the run's numbers are unchanged).
        self.algorithm.start_precompile(config.batch_size)
        if self.iteration == 0 and config.normalize_obs:
            self._warm_up_normalizer()
        self.phase_seconds = {"log_s": 0.0, "checkpoint_s": 0.0}
        self._rng_at_end: str | None = None  # the generator's state when the last iteration ended
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.run.checkpoints),
                                                  max_to_keep=config.keep_checkpoints)

    def close(self) -> None:
        """Release the run directory's lock without training (``train()`` releases it itself)."""
        self.lock.release()

    @property
    def iteration(self) -> int:
        return int(self.counters[0])

    @property
    def env_steps(self) -> int:
        return int(self.counters[1])

    def _warm_up_normalizer(self) -> None:
        """Start the observation statistics from the initial policy's observations (in-process envs,
        their own seed and noise), so the first update is judged under the statistics it acts with."""
        cfg = self.config
        steps = max(1, math.ceil(min(cfg.batch_size, NORMALIZER_WARMUP_OBS) / cfg.n_envs))
        collector = RolloutCollector(make_vector_env(self.make_env, cfg.n_envs, "sync"),
                                     NumpyActor(self.actor), seed=cfg.seed + 104_729)
        try:
            batch = collector.collect(steps, np.random.default_rng(cfg.seed + 104_729))
        finally:
            collector.close()
        self.algorithm.init_normalizer(batch.obs)

    def _collector(self, acting: NumpyActor, seed: int) -> RolloutCollector | Any:
        """The vector backend: in-process or subprocess blocks (a vector env under :class:`RolloutCollector`),
        local worker processes (:class:`trpo_tf.process_rollout.ProcessRolloutCollector`) or Ray workers
        (:class:`trpo_tf.ray_rollout.RayRolloutCollector`): the last two run segments, same interface."""
        cfg = self.config
        if cfg.vector_env == "ray":
            from trpo_tf.ray_rollout import RayRolloutCollector

            return RayRolloutCollector.for_layout(self.make_env, cfg.n_envs, acting, seed, cfg.ray_workers,
                                                  cfg.ray_envs_per_worker, cfg.ray_cpus_per_worker,
                                                  cfg.ray_address or None)
        if cfg.vector_env == "workers":
            return ProcessRolloutCollector(self.make_env, cfg.n_envs, acting, seed, cfg.n_workers)
        envs = make_vector_env(self.make_env, cfg.n_envs, cfg.vector_env, cfg.n_workers)
        return RolloutCollector(envs, acting, seed=seed)

    def _restore(self, path: str) -> None:
        try:
            names = {name.split("/")[0] for name, _ in tf.train.list_variables(path)}
            checkpoint = self.checkpoint
            if "reward_returns" not in names:  # written by 0.1.0: the scaler's running returns restart at 0
                objects = {k: v for k, v in self.algorithm.checkpoint_objects().items() if k != "reward_returns"}
                checkpoint = tf.train.Checkpoint(counters=self.counters, rng_state=self.rng_state, **objects)
                log.info("%s predates checkpointed reward-scaler returns; they restart at zero", path)
            checkpoint.restore(path).assert_consumed()
        except (tf.errors.OpError, AssertionError, ValueError, IndexError) as exc:  # IndexError: truncated .data
            raise RunDirError(f"checkpoint {path} is corrupted or from another model: "
                              f"{str(exc).splitlines()[0][:200]}") from None
        self.rng.bit_generator.state = json.loads(self.rng_state.numpy().decode())
        self.algorithm.after_restore()
        self.metrics.truncate_after(self.iteration, max_dropped=self.config.checkpoint_every)
        log.info("resumed %s at iteration %d, %d env steps", self.run.path, self.iteration, self.env_steps)

    def _save_checkpoint(self) -> None:
        # The generator as the last finished iteration left it: with overlap_critic, the next collection has
        # already drawn from it when that iteration's checkpoint is written.
        self.rng_state.assign(self._rng_at_end or json.dumps(self.rng.bit_generator.state))
        self.algorithm.before_save()
        self.manager.save(checkpoint_number=self.iteration)

    def train(self, callback: Callable[[dict[str, Any], NumpyActor], bool] | None = None) -> dict[str, Any]:
        """Iterate until ``total_steps``; returns the last metrics row and the evaluation. Releases the
        run directory's lock when done (a Trainer trains once).

        ``callback(row, acting)``, if given, runs after each iteration (row written, checkpoint saved) with
        the metrics row and the numpy acting policy (already refreshed to the new weights); returning True
        stops training there (e.g. ``trpo bench skill`` once its evaluation reaches the target). With
        ``overlap_critic`` it runs for iteration k once the collection of k+1 is done (the row needs the
        critic fit that ran beside it); a stop then discards that batch, so the run ends as it would have.
        :attr:`phase_seconds` totals the time spent writing metrics/TensorBoard (``log_s``) and
        checkpoints (``checkpoint_s``) — the phases that follow the row they would belong to."""
        try:
            return self._train(callback)
        finally:
            self.lock.release()

    def _train(self, callback: Callable[[dict[str, Any], NumpyActor], bool] | None) -> dict[str, Any]:
        cfg = self.config
        acting = NumpyActor(self.actor)
        # A resumed run cannot restore the simulators mid-episode: it starts fresh episodes on new seeds.
        collector = self._collector(acting, seed=cfg.seed + 7919 * self.iteration)
        sinks = _Sinks(HealthCheck(), ScalarLog(str(self.run.tensorboard)),
                       Progress(cfg.total_steps, self.env_steps, enabled=self.progress_enabled), callback, acting)
        row: dict[str, Any] = {}
        pending: tuple[dict[str, Any], PendingCriticFit] | None = None  # a row waiting for its critic fit
        start = time.perf_counter()
        # Ctrl-C (once) stops the loop where a callback's stop would (``_finish``): after a finished iteration,
        # its row written; the checkpoint below is then saved and KeyboardInterrupt raised. A second Ctrl-C raises at
        # once (the rows after the newest checkpoint are then redone by a resume).
        with deferred_interrupts():
            try:
                while self.env_steps < cfg.total_steps:
                    batch, timing = self._collect(collector, acting)
                    if pending is not None:  # iteration k's critic fit ran beside this collection (k+1)
                        row, pending = _complete(*pending), None
                        if self._finish(row, sinks):
                            break
                    row, fit = self._learn(batch, timing, acting, start)
                    if fit is not None:
                        pending = (row, fit)
                    elif self._finish(row, sinks):
                        break
                if pending is not None:
                    row, pending = _complete(*pending), None
                    self._finish(row, sinks)
            finally:
                if pending is not None:  # an error during collection k+1: iteration k's row and checkpoint are lost
                    error = pending[1].abandon()
                    if error is not None:
                        log.warning("the critic fit running beside the failed collection failed too: %r", error)
                sinks.progress.close()
                collector.close()
                sinks.writer.close()
            self.algorithm.wait_precompile()  # (no update ran, e.g. a resume already at total_steps)
            if self.manager.latest_checkpoint is None or not self.manager.latest_checkpoint.endswith(
                    f"-{self.iteration}"):
                self._save_checkpoint()
            if interrupt_requested():
                log.warning("interrupted after iteration %d (%d env steps), checkpoint saved; continue with: "
                            "trpo train --resume %s", self.iteration, self.env_steps, self.run.path)
                raise KeyboardInterrupt
        result: dict[str, Any] = {"run_dir": str(self.run.path), "last": row}
        if cfg.eval_episodes > 0:
            result["eval"] = run_episodes(acting.deterministic, self.make_eval_env, cfg.eval_episodes,
                                          seed=10_000 + cfg.seed)
            write_json_atomic(self.run.eval, result["eval"])
        return result

    def _collect(self, collector: RolloutCollector, acting: NumpyActor) -> tuple[RolloutBatch, dict[str, float]]:
        """One batch with the current numpy actor, and its timing (``t0``: when it started)."""
        t0 = time.perf_counter()
        acting.take_seconds()
        batch = collector.collect(self.config.n_steps, self.rng)
        t1 = time.perf_counter()
        acting_s = acting.take_seconds()
        if getattr(collector, "last_timing", None):
            self.collector_timing.append(collector.last_timing)
        # env_s: env stepping and the collector's bookkeeping
        return batch, {"t0": t0, "collect_s": t1 - t0, "acting_s": acting_s, "env_s": t1 - t0 - acting_s}

    def _learn(self, batch: RolloutBatch, timing: dict[str, float], acting: NumpyActor,
               start: float) -> tuple[dict[str, Any], PendingCriticFit | None]:
        """The update of ``batch``: the whole row, or (overlap_critic) the row without the critic's columns and
        the critic fit running in the background. The numpy actor gets θ_{k+1} and the new statistics."""
        # Both seeds come from the run's checkpointed generator: a resumed run draws what it would have.
        critic_seed, fisher_seed = (int(x) for x in self.rng.integers(2**31 - 1, size=2))
        fit: PendingCriticFit | None = None
        if self.config.overlap_critic:
            diagnostics, fit = self.algorithm.update_policy(batch, critic_seed=critic_seed, fisher_seed=fisher_seed)
            acting.refresh(self.actor, diagnostics.pop("obs_stats"))
        else:
            diagnostics = self.algorithm.update(batch, critic_seed=critic_seed, fisher_seed=fisher_seed)
            acting.refresh(self.actor)
        self.counters.assign_add([1, batch.n_steps])
        self._rng_at_end = json.dumps(self.rng.bit_generator.state)

        returns_seen = batch.episode_returns
        row = {
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "time_s": time.perf_counter() - start,  # overlap_critic: when the critic fit starts
            "collect_s": timing["collect_s"],
            "acting_s": timing["acting_s"],
            "env_s": timing["env_s"],
            "episode_return_mean": float(np.mean(returns_seen)) if returns_seen else float("nan"),
            "episode_return_std": float(np.std(returns_seen)) if returns_seen else float("nan"),
            "episode_length_mean": float(np.mean(batch.episode_lengths)) if returns_seen else float("nan"),
            "episodes": len(returns_seen),
            "success_rate": float(np.mean(batch.episode_successes)) if batch.episode_successes else float("nan"),
            "n_steps": batch.n_steps,
            **diagnostics,
        }
        return (row, fit) if fit is not None else (_complete(row, None), None)

    def _finish(self, row: dict[str, Any], sinks: _Sinks) -> bool:
        """Health check, metrics row (fsynced), TensorBoard, checkpoint when due, progress, callback; True: stop
        (the callback asked to, or Ctrl-C was pressed during the iteration)."""
        cfg = self.config
        sinks.health(row)
        t0 = time.perf_counter()
        self.metrics.append(row)
        sinks.writer.write(row, step=row["env_steps"])
        t1 = time.perf_counter()
        if self.iteration % cfg.checkpoint_every == 0 or self.env_steps >= cfg.total_steps:
            self._save_checkpoint()
        t2 = time.perf_counter()
        self.phase_seconds["log_s"] += t1 - t0
        self.phase_seconds["checkpoint_s"] += t2 - t1
        sinks.progress.update(row)
        stop = sinks.callback is not None and bool(sinks.callback(row, sinks.acting))
        return stop or interrupt_requested()


@dataclass
class _Sinks:
    """Where a finished row goes (besides metrics.csv and the checkpoint)."""

    health: HealthCheck
    writer: ScalarLog
    progress: Progress
    callback: Callable[[dict[str, Any], NumpyActor], bool] | None
    acting: NumpyActor


def _complete(row: dict[str, Any], fit: PendingCriticFit | None) -> dict[str, Any]:
    """The row with its critic fit joined (if it ran in the background) and the derived timing columns:
    ``policy_s`` = gae_s + update_s + critic_wait_s, ``steps_per_s`` = steps / the iteration's phases
    (collection + GAE + update + normalizer + the wait for the critic; logging and checkpoints excluded)."""
    if fit is not None:
        row.update(fit.join())
    row["policy_s"] = row["gae_s"] + row["update_s"] + row["critic_wait_s"]
    seconds = row["collect_s"] + row["policy_s"] + row["normalizer_s"]
    row["steps_per_s"] = row.pop("n_steps") / seconds
    return row


__all__ = ["Trainer"]
