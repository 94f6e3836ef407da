"""The whole TRPO update — policy step and critic fit — side by side on two cores (seed 004, steps 3–4).

The policy step (:class:`trpo_tf.trpo.TRPOPolicyStep`) and the critic fit (:class:`trpo_tf.critic.CriticTrainer`)
are independent: the critic reads neither the actor nor the step's results, the step reads nothing the fit
writes, and both see the same frozen normalizer. So the update runs them at the same time — the fit in a
helper thread (:class:`trpo_tf.overlap.PendingCriticFit`), the step in the caller's — each its own compiled
call; a compiled call releases the GIL, so each gets a core. Measured on 2 cores at the seed settings
(docs/benchmarks.md, 2026-12-04, 9 alternated rounds): median 17.2 ms against 20.0 ms for the two graphs
fused in ONE compiled call and 23.9 ms for the two calls one after the other; the policy step alone took
14.5 ms, the floor of this way.

With one core there is nothing to run beside, and the fused call (one host round trip instead of two) is the
quicker one: ``parallel=False``, the default when this process may use a single CPU. Either way the numbers
are those of the two separate calls, bit for bit (tests/test_update.py).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from trpo_tf.critic import CriticTrainer
from trpo_tf.overlap import PendingCriticFit
from trpo_tf.trpo import TRPOPolicyStep


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class TRPOUpdate:
    """``update(obs, actions, advantages, returns, ...)`` → (policy diagnostics, critic diagnostics)."""

    def __init__(self, policy_step: TRPOPolicyStep, critic_trainer: CriticTrainer, jit_compile: bool = True,
                 parallel: bool | None = None) -> None:
        """``parallel``: the two parts side by side (True), or fused in one compiled call (False); None
        chooses side by side when the process may use two or more CPUs."""
        self.policy_step, self.critic_trainer = policy_step, critic_trainer
        self.parallel = usable_cpus() > 1 if parallel is None else parallel
        self._compiled = tf.function(self._graph, jit_compile=jit_compile, reduce_retracing=True,
                                     autograph=False)

    def __call__(self, obs: np.ndarray, actions: np.ndarray, advantages: np.ndarray, returns: np.ndarray,
                 critic_seed: int, fisher_seed: int | None = None) -> tuple[dict[str, float], dict[str, float]]:
        """One update on a flattened batch [n, ...]; seeds as for the two objects' own calls."""
        if self.parallel:
            policy, fit = PendingCriticFit.beside(
                lambda: self.policy_step(obs, actions, advantages, fisher_seed=fisher_seed),
                self.critic_trainer, obs, returns, critic_seed)
            critic = fit.join()
            del critic["critic_wait_s"]
            return policy, critic
        order = self.critic_trainer.minibatch_order(len(obs), critic_seed)
        policy_out, critic_out = self._compiled(
            tf.convert_to_tensor(obs, tf.float32), tf.convert_to_tensor(actions),
            tf.convert_to_tensor(advantages, tf.float32), tf.convert_to_tensor(returns, tf.float32),
            tf.convert_to_tensor(order), self.policy_step.fisher_seed_tensor(fisher_seed))
        return (TRPOPolicyStep.diagnostics({k: v.numpy() for k, v in policy_out.items()}),
                {k: float(v) for k, v in critic_out.items()})

    def _graph(self, obs: tf.Tensor, actions: tf.Tensor, advantages: tf.Tensor, returns: tf.Tensor,
               order: tf.Tensor, fisher_seed: tf.Tensor) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
        """Both parts as ONE graph (``parallel=False``): their own graph code, back to back."""
        policy = self.policy_step.graph(obs, actions, advantages, fisher_seed)
        critic = self.critic_trainer.graph(obs, returns, order)
        return policy, critic
