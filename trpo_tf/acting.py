"""The per-step acting path in numpy.

A ``tf.function`` call costs ~250 µs whatever the batch (FACTS.md), a numpy forward of the same MLP ~6 µs.
So each iteration copies the actor's weights (and the frozen normalizer) into numpy once, and every
vector-env step makes one batched numpy call. The maths is the Keras actor's, line for line.

This module imports no TensorFlow: Ray rollout workers build a :class:`NumpyActor` from
:meth:`NumpyActor.params` (plain arrays shipped through the object store) and never load TF.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # only for type hints: importing models would load TensorFlow
    from trpo_tf.models import _Actor

_ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "elu": lambda x: np.where(x > 0.0, x, np.expm1(np.minimum(x, 0.0))),
}


def actor_params(actor: _Actor) -> dict[str, Any]:
    """The actor's weights and frozen normalizer statistics as numpy arrays (picklable, TF-free)."""
    obs_mean, obs_inv_std = actor.normalizer.numpy_params()
    head = actor.logits_head if actor.discrete else actor.mean_head
    return {
        "discrete": bool(actor.discrete),
        "activation": actor.activation_name,
        "obs_mean": obs_mean,
        "obs_inv_std": obs_inv_std,
        "obs_clip": actor.normalizer.clip if actor.normalizer.enabled else np.inf,
        "hidden": [(layer.kernel.numpy(), layer.bias.numpy()) for layer in actor.hidden],
        "head": (head.kernel.numpy(), head.bias.numpy()),
        "std": None if actor.discrete else np.exp(actor.log_std.numpy()).astype(np.float32),
    }


class NumpyActor:
    """A numpy snapshot of a Keras actor: ``sample`` for collection, ``deterministic`` for evaluation."""

    def __init__(self, actor: _Actor | None = None, params: dict[str, Any] | None = None) -> None:
        if (actor is None) == (params is None):
            raise ValueError("give NumpyActor an actor or its params, not both")
        self.load(actor_params(actor) if actor is not None else params)

    def refresh(self, actor: _Actor) -> None:
        """Copy the current weights and normalizer statistics."""
        self.load(actor_params(actor))

    def load(self, params: dict[str, Any]) -> None:
        """Take weights and statistics from :func:`actor_params` output."""
        self._params = params
        self.discrete = params["discrete"]
        self.activation = _ACTIVATIONS[params["activation"]]
        self.obs_mean, self.obs_inv_std, self.obs_clip = params["obs_mean"], params["obs_inv_std"], params["obs_clip"]
        self.hidden, self.head, self.std = params["hidden"], params["head"], params["std"]

    def params(self) -> dict[str, Any]:
        """What :meth:`load` takes: ship this to a process that has no TensorFlow."""
        return self._params

    def head_output(self, obs: np.ndarray) -> np.ndarray:
        """Gaussian mean or categorical logits for a batch of raw observations [n, obs_dim]."""
        x = np.clip((np.asarray(obs, np.float32) - self.obs_mean) * self.obs_inv_std, -self.obs_clip, self.obs_clip)
        for kernel, bias in self.hidden:
            x = self.activation(x @ kernel + bias)
        return x @ self.head[0] + self.head[1]

    def noise(self, rngs: Sequence[np.random.Generator], n_steps: int) -> np.ndarray:
        """[n_steps, len(rngs), k] noise for :meth:`act`, column ``i`` drawn from ``rngs[i]`` alone:
        standard normal ε (Gaussian) or Gumbel(0, 1) per logit (categorical)."""
        k = self.head[1].shape[0]
        if self.discrete:
            columns = [rng.gumbel(size=(n_steps, k)) for rng in rngs]
        else:
            columns = [rng.standard_normal((n_steps, k), dtype=np.float32) for rng in rngs]
        return np.stack(columns, axis=1) if columns else np.empty((n_steps, 0, k), np.float32)

    def act(self, obs: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Stochastic actions from given noise: μ + σ·ε, or a categorical draw by the Gumbel-max trick."""
        out = self.head_output(obs)
        if self.discrete:
            return np.argmax(out + noise, axis=-1)
        return (out + self.std * noise).astype(np.float32)

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Stochastic actions with noise drawn from one generator for the whole batch."""
        shape = (len(obs), self.head[1].shape[0])
        noise = rng.gumbel(size=shape) if self.discrete else rng.standard_normal(shape, dtype=np.float32)
        return self.act(obs, noise)

    def deterministic(self, obs: np.ndarray) -> np.ndarray:
        """The mode: μ(s), or argmax of the logits."""
        out = self.head_output(obs)
        return np.argmax(out, axis=-1) if self.discrete else out.astype(np.float32)
