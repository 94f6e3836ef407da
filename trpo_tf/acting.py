"""The per-step acting path in numpy.

A ``tf.function`` call costs ~250 µs whatever the batch (FACTS.md), a numpy forward of the same MLP ~6 µs.
So each iteration copies the actor's weights (and the frozen normalizer) into numpy once, and every
vector-env step makes one batched numpy call. The maths is the Keras actor's, line for line.

This module imports no TensorFlow: Ray rollout workers build a :class:`NumpyActor` from
:meth:`NumpyActor.params` (plain arrays shipped through the object store) and never load TF.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # only for type hints: importing models would load TensorFlow
    from trpo_tf.models import ObservationStats, _Actor


def _elu_(x: np.ndarray) -> np.ndarray:
    x[:] = np.where(x > 0.0, x, np.expm1(np.minimum(x, 0.0)))
    return x


# In place: each layer's output array is reused for its activation (no extra temporaries per step).
_ACTIVATIONS = {
    "tanh": lambda x: np.tanh(x, out=x),
    "relu": lambda x: np.maximum(x, 0.0, out=x),
    "elu": _elu_,
}


def actor_params(actor: _Actor, obs_stats: ObservationStats | None = None) -> dict[str, Any]:
    """The actor's weights and frozen normalizer statistics as numpy arrays (picklable, TF-free); with
    ``obs_stats``, those statistics instead of the normalizer's variables (computed, not yet assigned)."""
    obs_mean, obs_inv_std = actor.normalizer.numpy_params(obs_stats)
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
        self.seconds = 0.0  # time spent drawing noise and acting (the acting share of collection)
        self.load(actor_params(actor) if actor is not None else params)

    def refresh(self, actor: _Actor, obs_stats: ObservationStats | None = None) -> None:
        """Copy the current weights and normalizer statistics (or ``obs_stats``, see :func:`actor_params`)."""
        self.load(actor_params(actor, obs_stats))

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

    def noise(self, rngs: Sequence[np.random.Generator], n_steps: int) -> np.ndarray:
        """[n_steps, len(rngs), k] noise for :meth:`act`, column ``i`` drawn from ``rngs[i]`` alone:
        standard normal ε (Gaussian) or Gumbel(0, 1) per logit (categorical)."""
        t0 = time.perf_counter()
        k = self.head[1].shape[0]
        if self.discrete:
            columns = [rng.gumbel(size=(n_steps, k)) for rng in rngs]
        else:
            columns = [rng.standard_normal((n_steps, k), dtype=np.float32) for rng in rngs]
        out = np.stack(columns, axis=1) if columns else np.empty((n_steps, 0, k), np.float32)
        self.seconds += time.perf_counter() - t0
        return out

    def act(self, obs: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Stochastic actions from given noise: μ + σ·ε, or a categorical draw by the Gumbel-max trick."""
        t0 = time.perf_counter()
        out = self.head_output(obs)
        if self.discrete:
            out = np.argmax(out + noise, axis=-1)
        else:
            out += self.std * noise  # float32 throughout: no astype copy
        self.seconds += time.perf_counter() - t0
        return out

    def take_seconds(self) -> float:
        """Seconds spent in :meth:`noise` and :meth:`act` since the last call (and reset the count)."""
        seconds, self.seconds = self.seconds, 0.0
        return seconds

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Stochastic actions with noise drawn from one generator for the whole batch."""
        shape = (len(obs), self.head[1].shape[0])
        noise = rng.gumbel(size=shape) if self.discrete else rng.standard_normal(shape, dtype=np.float32)
        return self.act(obs, noise)

    def deterministic(self, obs: np.ndarray) -> np.ndarray:
        """The mode: μ(s), or argmax of the logits."""
        out = self.head_output(obs)
        return np.argmax(out, axis=-1) if self.discrete else out.astype(np.float32)
