"""Critic fit: minibatch Adam on MSE(V_φ(s), R̂) for a few epochs, all inside one compiled call (seed 004, step 4)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from trpo_tf.models import Critic


def explained_variance(predicted: np.ndarray, target: np.ndarray) -> float:
    """1 − Var[target − predicted] / Var[target]: 1 is perfect, 0 no better than a constant (NaN if Var = 0)."""
    var = float(np.var(target))
    return float("nan") if var == 0.0 else 1.0 - float(np.var(target - predicted)) / var


class CriticTrainer:
    """Fits the critic to GAE returns; epochs × minibatches run in a single ``tf.function``."""

    def __init__(self, critic: Critic, learning_rate: float = 1e-3, epochs: int = 5, batch_size: int = 128,
                 jit_compile: bool = True) -> None:
        self.critic = critic
        self.epochs, self.batch_size = epochs, batch_size
        self.optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        self.optimizer.build(critic.trainable_variables)
        self._fit = tf.function(self._fit_graph, jit_compile=jit_compile, reduce_retracing=True)
        self._predict = tf.function(critic.call, input_signature=[tf.TensorSpec([None, None], tf.float32)])

    def values(self, obs: np.ndarray) -> np.ndarray:
        """V(s) for a batch of raw observations (any batch size, no retracing)."""
        return self._predict(tf.convert_to_tensor(obs, tf.float32)).numpy()

    def fit(self, obs: np.ndarray, returns: np.ndarray, seed: int) -> dict[str, float]:
        """Run the epochs; ``seed`` fixes the minibatch shuffles (stateless RNG)."""
        out = self._fit(tf.convert_to_tensor(obs, tf.float32), tf.convert_to_tensor(returns, tf.float32),
                        tf.constant([seed, 0], tf.int32))
        return {k: float(v) for k, v in out.items()}

    def _fit_graph(self, obs: tf.Tensor, returns: tf.Tensor, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        variables = self.critic.trainable_variables
        n = tf.shape(obs)[0]
        batch = tf.minimum(self.batch_size, n)
        n_batches = n // batch

        def mse(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            return tf.reduce_mean(tf.square(self.critic(x) - y))

        loss_before = mse(obs, returns)
        for epoch in tf.range(self.epochs):
            order = tf.argsort(tf.random.stateless_uniform([n], seed=seed + tf.stack([0, epoch])))
            for b in tf.range(n_batches):
                idx = order[b * batch:(b + 1) * batch]
                with tf.GradientTape() as tape:
                    loss = mse(tf.gather(obs, idx), tf.gather(returns, idx))
                self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"value_loss": loss_before, "value_loss_after": mse(obs, returns)}
