"""The whole TRPO update — policy step, then critic fit — as ONE compiled call (seed 004, steps 3–4).

The policy step (:class:`trpo_tf.trpo.TRPOPolicyStep`) and the critic fit (:class:`trpo_tf.critic.CriticTrainer`)
each compile on their own; called one after the other they cost two host round trips (inputs converted,
a call dispatched, diagnostics copied out) with nothing computed in between. They are independent — the
critic reads neither the actor nor the step's results, and both see the same frozen normalizer — so here
one ``tf.function`` (XLA) runs both graphs back to back and returns every diagnostic at once. The maths is
the two objects' own graph code, unchanged; their variables (actor, critic, Adam) are the ones updated.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from trpo_tf.critic import CriticTrainer
from trpo_tf.trpo import TRPOPolicyStep


class TRPOUpdate:
    """``update(obs, actions, advantages, returns, ...)`` → (policy diagnostics, critic diagnostics)."""

    def __init__(self, policy_step: TRPOPolicyStep, critic_trainer: CriticTrainer, jit_compile: bool = True) -> None:
        self.policy_step, self.critic_trainer = policy_step, critic_trainer
        self._compiled = tf.function(self._graph, jit_compile=jit_compile, reduce_retracing=True)

    def __call__(self, obs: np.ndarray, actions: np.ndarray, advantages: np.ndarray, returns: np.ndarray,
                 critic_seed: int, fisher_seed: int | None = None) -> tuple[dict[str, float], dict[str, float]]:
        """One update on a flattened batch [n, ...]; seeds as for the two objects' own calls."""
        order = self.critic_trainer.minibatch_order(len(obs), critic_seed)
        policy, critic = self._compiled(tf.convert_to_tensor(obs, tf.float32), tf.convert_to_tensor(actions),
                                        tf.convert_to_tensor(advantages, tf.float32),
                                        tf.convert_to_tensor(returns, tf.float32), tf.convert_to_tensor(order),
                                        self.policy_step.fisher_seed_tensor(fisher_seed))
        return (TRPOPolicyStep.diagnostics({k: v.numpy() for k, v in policy.items()}),
                {k: float(v) for k, v in critic.items()})

    def _graph(self, obs: tf.Tensor, actions: tf.Tensor, advantages: tf.Tensor, returns: tf.Tensor,
               order: tf.Tensor, fisher_seed: tf.Tensor) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
        policy = self.policy_step.graph(obs, actions, advantages, fisher_seed)
        critic = self.critic_trainer.graph(obs, returns, order)
        return policy, critic
