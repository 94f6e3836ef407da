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
        self._fit = tf.function(self._fit_graph, jit_compile=jit_compile, reduce_retracing=True, autograph=False)
        self._predict = tf.function(critic.call, input_signature=[tf.TensorSpec([None, None], tf.float32)],
                                    autograph=False)

    def values(self, obs: np.ndarray) -> np.ndarray:
        """V(s) for a batch of raw observations (any batch size, no retracing)."""
        return self._predict(tf.convert_to_tensor(obs, tf.float32)).numpy()

    def minibatch_order(self, n: int, seed: int) -> np.ndarray:
        """[epochs × minibatches, batch] sample indices: one numpy permutation per epoch, fixed by ``seed``
        (the remainder of n / batch is dropped each epoch)."""
        batch = min(self.batch_size, n)
        rng = np.random.default_rng(seed)
        order = np.stack([rng.permutation(n)[: (n // batch) * batch] for _ in range(self.epochs)]) \
            if self.epochs > 0 else np.zeros((0, batch), np.int64)
        return order.reshape(-1, batch).astype(np.int32)

    def fit(self, obs: np.ndarray, returns: np.ndarray, seed: int) -> dict[str, float]:
        """Run the epochs; ``seed`` fixes the minibatch shuffles (one numpy permutation per epoch)."""
        out = self._fit(tf.convert_to_tensor(obs, tf.float32), tf.convert_to_tensor(returns, tf.float32),
                        tf.convert_to_tensor(self.minibatch_order(len(obs), seed)))
        return {k: float(v) for k, v in out.items()}

    def graph(self, obs: tf.Tensor, returns: tf.Tensor, order: tf.Tensor) -> dict[str, tf.Tensor]:
        """The fit as graph ops, for callers that compile it with more work (:class:`trpo_tf.update.TRPOUpdate`)."""
        return self._fit_graph(obs, returns, order)

    def _fit_graph(self, obs: tf.Tensor, returns: tf.Tensor, order: tf.Tensor) -> dict[str, tf.Tensor]:
        """``order[k]`` holds the sample indices of minibatch k (epochs × minibatches rows).

        The batch goes through the normalizer once (its statistics are frozen during the fit; the op is
        elementwise, so the values are those of normalizing each minibatch: ~4 of ~29 ms at 20 epochs of 128 of
        2,048 on these 2 cores, issue 13). All minibatches are gathered once before the loop: a data-dependent
        gather inside an XLA while-loop costs ~100× more on CPU than slicing a pre-gathered [k, batch, ...]
        tensor.
        The loop is an explicit ``tf.while_loop``: the function is traced without AutoGraph (faster to trace).
        """
        variables = self.critic.trainable_variables
        normalized = self.critic.normalizer(obs)

        def mse(z: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            return tf.reduce_mean(tf.square(self.critic.value_of_normalized(z) - y))

        loss_before = mse(normalized, returns)
        if self.epochs > 0:  # (XLA cannot compile the loop over an empty order)
            z_batches, return_batches = tf.gather(normalized, order), tf.gather(returns, order)

            def adam_step(k: tf.Tensor) -> tuple[tf.Tensor]:
                with tf.GradientTape() as tape:
                    loss = mse(z_batches[k], return_batches[k])
                self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
                return (k + 1,)

            tf.while_loop(lambda k: k < tf.shape(order)[0], adam_step, (tf.constant(0),))
        return {"value_loss": loss_before, "value_loss_after": mse(normalized, returns)}
