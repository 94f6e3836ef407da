"""The TRPO algorithm object (seed 004, "Full Algorithm"; the split of rsl_rl's ``PPO`` class): a rollout
batch in, diagnostics out. The runner (or a distributed driver, or a test) collects and calls :meth:`update`.

One update, in order:
    V(s) for every state the batch needs, in ONE critic call (steps, last obs, truncated episodes' final obs)
    r̃ = r / std(discounted return)                          (optional, :class:`RewardScaler`)
    Â, R̂ = GAE(r̃, V, V(s'), terminated, truncated)           (bootstrap on truncation)
    θ ← TRPO step(s, a, Â)                                    ┐ side by side on two cores (one compiled
    φ ← critic fit(s, R̂)                                      ┘ call on one core; :class:`TRPOUpdate`)
    normalizer statistics ← s                                 (after both fits: the batch was collected,
                                                               and is judged, under frozen statistics)

:meth:`update_policy` is the same iteration split in two for ``overlap_critic`` (:mod:`trpo_tf.overlap`): the
new statistics (computed, not assigned) and the policy step now, the critic fit in a background thread started
beside the step and joined after the next collection (its :meth:`~trpo_tf.overlap.PendingCriticFit.join`
assigns the statistics); same maths, same numbers.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import gymnasium as gym
import numpy as np
import tensorflow as tf

from trpo_tf.advantages import RewardScaler, compute_gae
from trpo_tf.config import TRPOConfig
from trpo_tf.critic import CriticTrainer, explained_variance
from trpo_tf.models import build_models
from trpo_tf.overlap import PendingCriticFit
from trpo_tf.rollout import RolloutBatch, next_values
from trpo_tf.trpo import TRPOPolicyStep, TRPOStepSettings
from trpo_tf.update import TRPOUpdate


class TRPO:
    """Owns the actor, critic, policy step, critic trainer, reward scaler and observation normalizer."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, config: TRPOConfig) -> None:
        self.config = config
        self.actor, self.critic = build_models(observation_space, action_space, config.hidden_sizes,
                                               config.activation, config.init_log_std, config.normalize_obs,
                                               config.obs_clip)
        self.normalizer = self.actor.normalizer  # shared with the critic
        self.policy_step = TRPOPolicyStep(self.actor, TRPOStepSettings(
            max_kl=config.max_kl, cg_iters=config.cg_iters, cg_tol=config.cg_tol, cg_damping=config.cg_damping,
            fisher_subsample=config.fisher_subsample, backtrack_coef=config.backtrack_coef,
            backtrack_iters=config.backtrack_iters, fisher_product=config.fisher_product,
            accept_ratio=config.accept_ratio), jit_compile=config.jit_compile, seed=config.seed)
        self.critic_trainer = CriticTrainer(self.critic, config.critic_lr, config.critic_epochs,
                                            config.critic_batch_size, jit_compile=config.jit_compile)
        self.update_step = TRPOUpdate(self.policy_step, self.critic_trainer, jit_compile=config.jit_compile)
        self.reward_scaler = RewardScaler(config.n_envs, config.gamma) if config.normalize_reward else None
        # The reward scaler's numpy state mirrored in variables, so it travels in the checkpoint.
        self.reward_state = tf.Variable([1e-4, 0.0, 1.0], dtype=tf.float64, trainable=False)  # count, mean, var
        self.reward_returns = tf.Variable(np.zeros(config.n_envs), dtype=tf.float64, trainable=False)
        self.observation_space, self.action_space = observation_space, action_space
        self._precompile: threading.Thread | None = None
        self._precompile_error: BaseException | None = None

    def start_precompile(self, n_samples: int) -> None:
        """Trace and (XLA-)compile the update for batches of ``n_samples`` in a background thread, so the
        compilation overlaps env start-up, the normalizer warm-up and the first collection; :meth:`update`
        waits for it. It runs the update once on a zero batch: zero advantages make the policy step a
        no-op that rewrites θ_old bit for bit (status "zero gradient"), and the critic's weights and Adam
        state are put back afterwards, so the run's numbers are exactly those without it
        (tests/test_algorithm.py). The normalizer is neither read back nor written here. With
        ``overlap_critic`` (or a parallel :class:`TRPOUpdate`) it compiles the policy step and the critic fit as the
        two calls they are then."""
        def work() -> None:
            try:
                state = list(self.critic.trainable_variables) + list(self.critic_trainer.optimizer.variables)
                saved = [v.numpy() for v in state]
                space = self.action_space
                actions = np.zeros(n_samples, np.int64) if isinstance(space, gym.spaces.Discrete) \
                    else np.zeros((n_samples, *space.shape), np.float32)
                zeros = np.zeros(n_samples, np.float32)
                obs = np.zeros((n_samples, *self.observation_space.shape), np.float32)
                if self.config.overlap_critic or self.update_step.parallel:  # two calls, each compiled on its own
                    self.policy_step(obs, actions, zeros, fisher_seed=0)
                    self.critic_trainer.fit(obs, zeros, seed=0)
                else:
                    self.update_step(obs, actions, zeros, zeros, critic_seed=0, fisher_seed=0)
                self.critic_trainer.values(obs[:1])
                for variable, value in zip(state, saved):
                    variable.assign(value)
            except BaseException as exc:  # re-raised by the first update
                self._precompile_error = exc

        self._precompile = threading.Thread(target=work, daemon=True, name="trpo-precompile")
        self._precompile.start()

    def wait_precompile(self) -> None:
        """Join the background compilation (if any) and re-raise its error."""
        if self._precompile is not None:
            self._precompile.join()
            self._precompile = None
        if self._precompile_error is not None:
            error, self._precompile_error = self._precompile_error, None
            raise error

    def init_normalizer(self, obs: np.ndarray) -> None:
        """Start the observation statistics from observations collected before the first update, so the
        first update does not move the policy from identity to the batch's statistics unchecked."""
        self.normalizer.update(np.asarray(obs, np.float32).reshape(-1, obs.shape[-1]))

    def values(self, batch: RolloutBatch) -> tuple[np.ndarray, np.ndarray]:
        """V(s_t) and V of the observation after each step (see :func:`trpo_tf.rollout.next_values`), from
        one critic call; both shaped [T, n_envs]."""
        obs = batch.obs.reshape(-1, batch.obs.shape[-1])
        n, n_envs = obs.shape[0], batch.last_obs.shape[0]
        v = self.critic_trainer.values(np.concatenate([obs, batch.last_obs, batch.final_obs]))
        values = v[:n].reshape(batch.rewards.shape)
        return values, next_values(batch, values, v[n:n + n_envs], v[n + n_envs:])

    def advantages(self, batch: RolloutBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(advantages, returns, values), each [T, n_envs]; scales rewards (and updates the scaler)."""
        values, nxt = self.values(batch)
        rewards = batch.rewards
        if self.reward_scaler is not None:
            rewards = self.reward_scaler(rewards, batch.terminated | batch.truncated)
        advantages, returns = compute_gae(rewards, values, nxt, batch.terminated, batch.truncated,
                                          self.config.gamma, self.config.gae_lambda)
        return advantages, returns, values

    def update(self, batch: RolloutBatch, critic_seed: int, fisher_seed: int | None = None) -> dict[str, Any]:
        """One TRPO iteration on ``batch``; ``critic_seed`` fixes the critic's minibatch shuffles and
        ``fisher_seed`` the random Fisher sub-sample (``fisher_subsample`` > 1; None: the step's own draw).
        Returns the diagnostics (policy step, critic fit, and the seconds of each phase: ``gae_s`` values +
        reward scaling + GAE, ``update_s`` the policy step and the critic fit side by side
        (:class:`trpo_tf.update.TRPOUpdate`), ``critic_wait_s`` 0 (no background fit), ``normalizer_s``; and
        ``policy_s`` = gae_s + update_s + critic_wait_s, the older column: the learner's whole time)."""
        self.wait_precompile()
        t0 = time.perf_counter()
        obs, actions, advantages, returns, values = self._prepare(batch)
        t1 = time.perf_counter()
        policy, critic = self.update_step(obs, actions, advantages, returns, critic_seed=critic_seed,
                                          fisher_seed=fisher_seed)
        t2 = time.perf_counter()
        self.normalizer.update(obs)
        t3 = time.perf_counter()
        return {**self._diagnostics(policy, values, returns), **critic, "critic_wait_s": 0.0,
                "policy_s": t2 - t0, "gae_s": t1 - t0, "update_s": t2 - t1, "normalizer_s": t3 - t2}

    def update_policy(self, batch: RolloutBatch, critic_seed: int,
                      fisher_seed: int | None = None) -> tuple[dict[str, Any], PendingCriticFit]:
        """:meth:`update` split for the overlapped loop: values + GAE; the new normalizer statistics computed but
        NOT assigned (``diagnostics["obs_stats"]``: give them to the numpy actor); the critic fit started in a
        background thread under the old statistics, and the policy step (θ written) beside it. Returns (the
        diagnostics without the critic's, the pending fit, which goes on beside the next collection if the
        policy step ended first); its ``join()`` returns ``value_loss``, ``value_loss_after`` and
        ``critic_wait_s`` and then assigns the statistics. Call nothing that reads or writes the critic, its
        optimizer or the normalizer before the join. ``update_s`` is the policy step (with the fit beside it);
        ``normalizer_s`` the statistics' computation."""
        self.wait_precompile()
        t0 = time.perf_counter()
        obs, actions, advantages, returns, values = self._prepare(batch)
        t1 = time.perf_counter()
        stats = self.normalizer.merged(obs)  # reads only the normalizer, which neither part writes
        t2 = time.perf_counter()
        policy, pending = PendingCriticFit.beside(
            lambda: self.policy_step(obs, actions, advantages, fisher_seed=fisher_seed), self.critic_trainer,
            obs, returns, critic_seed, after_join=None if stats is None else lambda: self.normalizer.assign(stats))
        t3 = time.perf_counter()
        return ({**self._diagnostics(policy, values, returns), "obs_stats": stats, "gae_s": t1 - t0,
                 "update_s": t3 - t2, "normalizer_s": t2 - t1}, pending)

    def _prepare(self, batch: RolloutBatch) -> tuple[np.ndarray, ...]:
        """(obs, actions, advantages, returns, values) of ``batch``, flattened over time and envs."""
        advantages, returns, values = self.advantages(batch)
        obs = batch.obs.reshape(-1, batch.obs.shape[-1])
        actions = batch.actions.reshape(obs.shape[0], *batch.actions.shape[2:])
        return obs, actions, advantages.reshape(-1), returns.reshape(-1), values.reshape(-1)

    @staticmethod
    def _diagnostics(policy: dict[str, Any], values: np.ndarray, returns: np.ndarray) -> dict[str, Any]:
        return {
            "kl": policy["kl"],
            "accepted": policy["accepted"],
            "backtracks": policy["backtracks"],
            "surrogate_improvement": policy["surrogate_after"] - policy["surrogate_before"],
            "cg_residual": policy["cg_residual"],
            "grad_norm": policy["grad_norm"],
            "entropy": policy["entropy"],
            "mean_std": policy["mean_std"],
            "explained_variance": explained_variance(values, returns),
            "reason": policy["reason"],
        }

    def checkpoint_objects(self) -> dict[str, Any]:
        """Everything of the algorithm a checkpoint holds (call :meth:`before_save` first and
        :meth:`after_restore` after restoring). ``reward_returns`` is new in this version: a checkpoint
        written without it restores with the running returns at zero (see :meth:`after_restore`)."""
        return {"actor": self.actor, "critic": self.critic, "critic_optimizer": self.critic_trainer.optimizer,
                "reward_state": self.reward_state, "reward_returns": self.reward_returns}

    def before_save(self) -> None:
        """Copy the reward scaler's numpy state into its checkpointed variables."""
        if self.reward_scaler is not None:
            s = self.reward_scaler.state()
            self.reward_state.assign([s["count"], s["mean"], s["var"]])
            self.reward_returns.assign(s["discounted"])

    def after_restore(self) -> None:
        """Load the reward scaler from its restored variables."""
        if self.reward_scaler is not None:
            count, mean, var = self.reward_state.numpy()
            self.reward_scaler.load_state({"count": count, "mean": mean, "var": var,
                                           "discounted": self.reward_returns.numpy()})
