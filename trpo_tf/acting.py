"""The per-step acting path in numpy.

A ``tf.function`` call costs ~250 µs whatever the batch (FACTS.md), a numpy forward of the same MLP ~6 µs.
So each iteration copies the actor's weights (and the frozen normalizer) into numpy once, and every
vector-env step makes one batched numpy call. The maths is the Keras actor's, line for line.
"""

from __future__ import annotations

import numpy as np

from trpo_tf.models import CategoricalActor, _Actor

_ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "elu": lambda x: np.where(x > 0.0, x, np.expm1(np.minimum(x, 0.0))),
}


class NumpyActor:
    """A numpy snapshot of a Keras actor: ``sample`` for collection, ``deterministic`` for evaluation."""

    def __init__(self, actor: _Actor) -> None:
        self.discrete = isinstance(actor, CategoricalActor)
        self.activation = _ACTIVATIONS[actor.activation_name]
        self.refresh(actor)

    def refresh(self, actor: _Actor) -> None:
        """Copy the current weights and normalizer statistics."""
        self.obs_mean, self.obs_inv_std = actor.normalizer.numpy_params()
        self.obs_clip = actor.normalizer.clip if actor.normalizer.enabled else np.inf
        self.hidden = [(layer.kernel.numpy(), layer.bias.numpy()) for layer in actor.hidden]
        head = actor.logits_head if isinstance(actor, CategoricalActor) else actor.mean_head
        self.head = (head.kernel.numpy(), head.bias.numpy())
        self.std = None if self.discrete else np.exp(actor.log_std.numpy()).astype(np.float32)

    def head_output(self, obs: np.ndarray) -> np.ndarray:
        """Gaussian mean or categorical logits for a batch of raw observations [n, obs_dim]."""
        x = np.clip((np.asarray(obs, np.float32) - self.obs_mean) * self.obs_inv_std, -self.obs_clip, self.obs_clip)
        for kernel, bias in self.hidden:
            x = self.activation(x @ kernel + bias)
        return x @ self.head[0] + self.head[1]

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Stochastic actions: μ + σ·ε, or a categorical draw by the Gumbel-max trick."""
        out = self.head_output(obs)
        if self.discrete:
            return np.argmax(out + rng.gumbel(size=out.shape), axis=-1)
        return (out + self.std * rng.standard_normal(out.shape, dtype=np.float32)).astype(np.float32)

    def deterministic(self, obs: np.ndarray) -> np.ndarray:
        """The mode: μ(s), or argmax of the logits."""
        out = self.head_output(obs)
        return np.argmax(out, axis=-1) if self.discrete else out.astype(np.float32)

