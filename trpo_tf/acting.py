"""The per-step acting path in numpy.

A ``tf.function`` call costs ~250 µs whatever the batch (FACTS.md), a numpy forward of the same MLP ~6 µs.
So each iteration copies the actor's weights (and the frozen normalizer) into numpy once, and every
vector-env step makes one batched numpy call. The maths is the Keras actor's, line for line.
"""

from __future__ import annotations

import time

import numpy as np

from trpo_tf.models import CategoricalActor, _Actor

def _elu_(x: np.ndarray) -> np.ndarray:
    x[:] = np.where(x > 0.0, x, np.expm1(np.minimum(x, 0.0)))
    return x


# In place: each layer's output array is reused for its activation (no extra temporaries per step).
_ACTIVATIONS = {
    "tanh": lambda x: np.tanh(x, out=x),
    "relu": lambda x: np.maximum(x, 0.0, out=x),
    "elu": _elu_,
}


class NumpyActor:
    """A numpy snapshot of a Keras actor: ``sample`` for collection, ``deterministic`` for evaluation."""

    def __init__(self, actor: _Actor) -> None:
        self.discrete = isinstance(actor, CategoricalActor)
        self.activation = _ACTIVATIONS[actor.activation_name]
        self.seconds = 0.0
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
        x = np.asarray(obs, np.float32) - self.obs_mean  # the one new array of the normalizer, then in place
        x *= self.obs_inv_std
        np.clip(x, -self.obs_clip, self.obs_clip, out=x)
        for kernel, bias in self.hidden:
            x = x @ kernel
            x += bias
            x = self.activation(x)
        out = x @ self.head[0]
        out += self.head[1]
        return out

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Stochastic actions: μ + σ·ε, or a categorical draw by the Gumbel-max trick. The time spent here
        is added to :attr:`seconds` (the acting share of collection, for the per-phase profile)."""
        t0 = time.perf_counter()
        out = self.head_output(obs)
        if self.discrete:
            out = np.argmax(out + rng.gumbel(size=out.shape), axis=-1)
        else:
            noise = rng.standard_normal(out.shape, dtype=np.float32)
            noise *= self.std
            out += noise
        self.seconds += time.perf_counter() - t0
        return out

    def take_seconds(self) -> float:
        """Seconds spent in :meth:`sample` since the last call (and reset the count)."""
        seconds, self.seconds = self.seconds, 0.0
        return seconds

    def deterministic(self, obs: np.ndarray) -> np.ndarray:
        """The mode: μ(s), or argmax of the logits."""
        out = self.head_output(obs)
        return np.argmax(out, axis=-1) if self.discrete else out.astype(np.float32)

