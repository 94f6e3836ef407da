"""The training loop (seed 004, "Full Algorithm"): collect → GAE → TRPO policy step → critic fit, per iteration,
with diagnostics, metrics, checkpoints and resume around it.

Crash safety: each iteration first appends its metrics row (fsynced), then saves a checkpoint with
``tf.train.CheckpointManager`` (TF writes the files, then atomically rewrites the ``checkpoint`` index, so a
half-written checkpoint is never listed). Resume restores the newest listed checkpoint and drops metrics rows
written after it, so rows are neither duplicated nor missing.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

import robots
from trpo_tf.acting import NumpyActor
from trpo_tf.advantages import RewardScaler, compute_gae
from trpo_tf.config import ConfigError, TRPOConfig
from trpo_tf.critic import CriticTrainer, explained_variance
from trpo_tf.evaluation import evaluate
from trpo_tf.models import build_models
from trpo_tf.monitor import HealthCheck, MetricsCSV, Progress
from trpo_tf.rollout import RolloutCollector, make_env, make_vector_env, next_values
from trpo_tf.run_dir import RunDir, RunDirError, RunInfo, write_json_atomic
from trpo_tf.trpo import TRPOPolicyStep, TRPOStepSettings

log = logging.getLogger("trpo_tf")


def resolve_task(task: str) -> tuple[str, str, dict[str, Any], robots.TaskSpec | None]:
    """(name, gym id, make kwargs, TaskSpec or None) for a registered task name, or any gymnasium id."""
    spec = robots.find_task(task)
    if spec is not None:
        return spec.name, spec.gym_id, dict(spec.kwargs), spec
    try:
        gym.spec(task)
    except gym.error.Error:
        robots.get_task(task)  # raises UnknownTaskError listing the known names
    return task, task, {}, None


def config_for_task(task: str, overrides: dict[str, Any] | None = None) -> TRPOConfig:
    """Defaults ← the task's preset (if any) ← ``overrides``."""
    resolve_task(task)
    preset = robots.load_preset(task) if robots.find_task(task) else {}
    return TRPOConfig(task=task).updated(preset).updated(overrides or {})


class Trainer:
    """One training run in one run directory (new, or resumed from its newest checkpoint)."""

    def __init__(self, config: TRPOConfig, run_dir: str | Path, resume: bool = False,
                 progress: bool = True) -> None:
        self.run = RunDir(run_dir)
        if resume:
            self.run.check(require_checkpoint=False)
        elif self.run.path.exists() and any(self.run.path.iterdir()):
            raise RunDirError(f"{self.run.path} already exists and is not empty; use --resume or a new --out")
        self.config = config.validate()
        self.progress_enabled = progress
        name, self.gym_id, kwargs, spec = resolve_task(config.task)
        self.env_kwargs = {**kwargs, **config.env_kwargs}

        probe = make_env(self.gym_id, self.env_kwargs)
        self.info = RunInfo.from_env(name, self.gym_id, self.env_kwargs, probe, spec)
        obs_space, act_space = probe.observation_space, probe.action_space
        probe.close()

        keras.utils.set_random_seed(config.seed)
        self.actor, self.critic = build_models(obs_space, act_space, config.hidden_sizes, config.activation,
                                               config.init_log_std, config.normalize_obs, config.obs_clip)
        self.policy_step = TRPOPolicyStep(self.actor, TRPOStepSettings(
            config.max_kl, config.cg_iters, config.cg_tol, config.cg_damping, config.fisher_subsample,
            config.backtrack_coef, config.backtrack_iters, config.fisher_product), jit_compile=config.jit_compile)
        self.critic_trainer = CriticTrainer(self.critic, config.critic_lr, config.critic_epochs,
                                            config.critic_batch_size, jit_compile=config.jit_compile)
        self.reward_scaler = RewardScaler(config.n_envs, config.gamma) if config.normalize_reward else None
        self.rng = np.random.default_rng(config.seed)

        # Everything a resume needs, in one checkpoint.
        self.counters = tf.Variable([0, 0], dtype=tf.int64, trainable=False)  # iteration, env steps
        self.rng_state = tf.Variable("", dtype=tf.string, trainable=False)
        self.reward_state = tf.Variable([1e-4, 0.0, 1.0], dtype=tf.float64, trainable=False)
        self.checkpoint = tf.train.Checkpoint(actor=self.actor, critic=self.critic,
                                              critic_optimizer=self.critic_trainer.optimizer,
                                              counters=self.counters, rng_state=self.rng_state,
                                              reward_state=self.reward_state)
        self.metrics = MetricsCSV(self.run.metrics)
        if resume and self.run.latest_checkpoint() is not None:
            self._restore()
        elif resume:  # killed before the first checkpoint: nothing was kept, start over in place
            self.metrics.truncate_after(0)
        else:
            self.run.path.mkdir(parents=True, exist_ok=True)
            config.save(self.run.config)
            self.run.write_info(self.info)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.run.checkpoints),
                                                  max_to_keep=config.keep_checkpoints)

    @property
    def iteration(self) -> int:
        return int(self.counters[0])

    @property
    def env_steps(self) -> int:
        return int(self.counters[1])

    def _restore(self) -> None:
        path = self.run.latest_checkpoint()
        try:
            self.checkpoint.restore(path).assert_consumed()
        except (tf.errors.OpError, AssertionError, ValueError, IndexError) as exc:  # IndexError: truncated .data
            raise RunDirError(f"checkpoint {path} is corrupted or from another model: "
                              f"{str(exc).splitlines()[0][:200]}") from None
        self.rng.bit_generator.state = json.loads(self.rng_state.numpy().decode())
        if self.reward_scaler is not None:
            count, mean, var = self.reward_state.numpy()
            self.reward_scaler.load_state({"count": count, "mean": mean, "var": var})
        self.metrics.truncate_after(self.iteration)
        log.info("resumed %s at iteration %d, %d env steps", self.run.path, self.iteration, self.env_steps)

    def _save_checkpoint(self) -> None:
        self.rng_state.assign(json.dumps(self.rng.bit_generator.state))
        if self.reward_scaler is not None:
            s = self.reward_scaler.state()
            self.reward_state.assign([s["count"], s["mean"], s["var"]])
        self.manager.save(checkpoint_number=self.iteration)

    def train(self) -> dict[str, Any]:
        """Iterate until ``total_steps``; returns the last metrics row and the evaluation."""
        cfg = self.config
        envs = make_vector_env(self.gym_id, cfg.n_envs, self.env_kwargs, cfg.vector_env, cfg.n_workers)
        acting = NumpyActor(self.actor)
        # A resumed run cannot restore the simulators mid-episode: it starts fresh episodes on new seeds.
        collector = RolloutCollector(envs, acting, seed=cfg.seed + 7919 * self.iteration)
        health = HealthCheck(cfg.max_kl)
        progress = Progress(cfg.total_steps, self.env_steps, enabled=self.progress_enabled)
        writer = tf.summary.create_file_writer(str(self.run.tensorboard))
        row: dict[str, Any] = {}
        start = time.perf_counter()
        try:
            while self.env_steps < cfg.total_steps:
                row = self._iteration(collector, acting, start)
                health(row)
                self.metrics.append(row)
                with writer.as_default(step=row["env_steps"]):
                    for key, value in row.items():
                        if isinstance(value, (int, float)) and math.isfinite(value):
                            tf.summary.scalar(key, value)
                if self.iteration % cfg.checkpoint_every == 0 or self.env_steps >= cfg.total_steps:
                    self._save_checkpoint()
                progress.update(row)
        finally:
            progress.close()
            collector.close()
            writer.close()
        if self.manager.latest_checkpoint is None or not self.manager.latest_checkpoint.endswith(
                f"-{self.iteration}"):
            self._save_checkpoint()
        result: dict[str, Any] = {"run_dir": str(self.run.path), "last": row}
        if cfg.eval_episodes > 0:
            result["eval"] = evaluate(acting.deterministic, self.gym_id, self.env_kwargs, cfg.eval_episodes,
                                      seed=10_000 + cfg.seed)
            write_json_atomic(self.run.eval, result["eval"])
        return result

    def _iteration(self, collector: RolloutCollector, acting: NumpyActor, start: float) -> dict[str, Any]:
        cfg = self.config
        t0 = time.perf_counter()
        batch = collector.collect(cfg.n_steps, self.rng)
        t1 = time.perf_counter()

        # Values of every state we need, in one critic call.
        obs = batch.obs.reshape(-1, batch.obs.shape[-1])
        n, n_envs = obs.shape[0], batch.last_obs.shape[0]
        v = self.critic_trainer.values(np.concatenate([obs, batch.last_obs, batch.final_obs]))
        values = v[:n].reshape(batch.rewards.shape)
        nxt = next_values(batch, values, v[n:n + n_envs], v[n + n_envs:])
        rewards = batch.rewards
        if self.reward_scaler is not None:
            rewards = self.reward_scaler(rewards, batch.terminated | batch.truncated)
        advantages, returns = compute_gae(rewards, values, nxt, batch.terminated, batch.truncated,
                                          cfg.gamma, cfg.gae_lambda)

        actions = batch.actions.reshape(n, *batch.actions.shape[2:])
        policy = self.policy_step(obs, actions, advantages.reshape(-1))
        t2 = time.perf_counter()
        critic = self.critic_trainer.fit(obs, returns.reshape(-1), seed=int(self.rng.integers(2**31 - 1)))
        t3 = time.perf_counter()
        # Statistics update after both fits: the batch was collected, and is judged, under frozen ones.
        self.actor.normalizer.update(obs)
        acting.refresh(self.actor)
        self.counters.assign_add([1, n])

        returns_seen = batch.episode_returns
        return {
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "time_s": time.perf_counter() - start,
            "steps_per_s": n / (time.perf_counter() - t0),
            "collect_s": t1 - t0,
            "policy_s": t2 - t1,
            "critic_s": t3 - t2,
            "episode_return_mean": float(np.mean(returns_seen)) if returns_seen else float("nan"),
            "episode_return_std": float(np.std(returns_seen)) if returns_seen else float("nan"),
            "episode_length_mean": float(np.mean(batch.episode_lengths)) if returns_seen else float("nan"),
            "episodes": len(returns_seen),
            "success_rate": float(np.mean(batch.episode_successes)) if batch.episode_successes else float("nan"),
            "kl": policy["kl"],
            "accepted": policy["accepted"],
            "linesearch_success": float(policy["accepted"]),
            "backtracks": policy["backtracks"],
            "surrogate_improvement": policy["surrogate_after"] - policy["surrogate_before"],
            "cg_residual": policy["cg_residual"],
            "grad_norm": policy["grad_norm"],
            "entropy": policy["entropy"],
            "mean_std": policy["mean_std"],
            "value_loss": critic["value_loss"],
            "value_loss_after": critic["value_loss_after"],
            "explained_variance": explained_variance(values.reshape(-1), returns.reshape(-1)),
            "reason": policy["reason"],
        }


def train(config: TRPOConfig, run_dir: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Train from scratch into ``run_dir`` (default ``runs/<task>-<time>``); returns the final summary."""
    if run_dir is None:
        run_dir = Path("runs") / f"{config.task.replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"
    return Trainer(config, run_dir, progress=progress).train()


def resume(run_dir: str | Path, total_steps: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Continue a run from its newest checkpoint up to its configured (or a larger) total."""
    run = RunDir(run_dir).check(require_checkpoint=False)
    config = TRPOConfig.load(run.config)
    if total_steps is not None:
        config = config.updated({"total_steps": total_steps})
    return Trainer(config, run_dir, resume=True, progress=progress).train()


__all__ = ["Trainer", "train", "resume", "resolve_task", "config_for_task", "ConfigError"]
