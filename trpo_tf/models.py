"""Keras actor and critic; the actor returns a TensorFlow Probability distribution.

- Diagonal Gaussian for ``Box`` actions with a state-independent, trainable log-std (Schulman et al. 2015,
  §8: "the policy ... outputs the mean of a Gaussian, with a separate set of parameters for the log std").
- Categorical for ``Discrete`` actions.
- The running observation normalizer is a Keras layer with non-trainable weights, shared by actor and
  critic, so checkpoints and the ONNX export carry it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from trpo_tf.headless import prepare_osmesa

prepare_osmesa()  # TensorFlow is loaded: isolate OSMesa's LLVM before anything imports mujoco

tfd = tfp.distributions


class ObservationStats(NamedTuple):
    """Normalizer statistics as :meth:`ObservationNormalizer.merged` computes them (float32 as stored)."""

    mean: np.ndarray
    var: np.ndarray
    count: float


class ObservationNormalizer(keras.layers.Layer):
    """``clip((x − mean) / sqrt(var + eps), ±clip)`` with statistics merged from each rollout batch.

    The update is the parallel-variance merge of Chan, Golub & LeVeque (1979); statistics are frozen
    between updates (the runner updates them after each policy step, so every update is on-policy).
    """

    def __init__(self, obs_dim: int, clip: float = 10.0, enabled: bool = True, epsilon: float = 1e-8,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.obs_dim, self.clip, self.enabled, self.epsilon = obs_dim, float(clip), enabled, epsilon
        self.mean = self.add_weight(shape=(obs_dim,), initializer="zeros", trainable=False, name="mean")
        self.var = self.add_weight(shape=(obs_dim,), initializer="ones", trainable=False, name="var")
        self.count = self.add_weight(shape=(), initializer="zeros", trainable=False, name="count",
                                     dtype="float64")

    def call(self, obs: tf.Tensor) -> tf.Tensor:
        obs = tf.cast(obs, tf.float32)
        if not self.enabled:
            return obs
        z = (obs - self.mean) / tf.sqrt(self.var + self.epsilon)
        return tf.clip_by_value(z, -self.clip, self.clip)

    def update(self, batch: np.ndarray) -> None:
        """Merge the mean/variance of ``batch`` (shape [n, obs_dim]) into the running statistics."""
        stats = self.merged(batch)
        if stats is not None:
            self.assign(stats)

    def merged(self, batch: np.ndarray) -> ObservationStats | None:
        """The statistics :meth:`update` would assign, computed without assigning them (None: nothing would
        change — normalization off or an empty batch). The overlapped loop (:mod:`trpo_tf.overlap`) gives them
        to the numpy actor first and assigns them once the critic fit reading the old ones has ended."""
        batch = np.asarray(batch, dtype=np.float64).reshape(-1, self.obs_dim)
        if not self.enabled or len(batch) == 0:
            return None
        n_a = float(self.count.numpy())
        mean_a, var_a = self.mean.numpy().astype(np.float64), self.var.numpy().astype(np.float64)
        n_b, mean_b, var_b = len(batch), batch.mean(axis=0), batch.var(axis=0)
        n = n_a + n_b
        delta = mean_b - mean_a
        mean = mean_a + delta * n_b / n
        var = (var_a * n_a + var_b * n_b + delta**2 * n_a * n_b / n) / n
        return ObservationStats(mean.astype(np.float32), var.astype(np.float32), n)

    def assign(self, stats: ObservationStats) -> None:
        """Write statistics from :meth:`merged` into the layer's variables."""
        self.mean.assign(stats.mean)
        self.var.assign(stats.var)
        self.count.assign(stats.count)

    def numpy_params(self, stats: ObservationStats | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(mean, 1/std) as float32 arrays, for the numpy acting path: of the variables, or of ``stats``
        (from :meth:`merged`, not assigned yet)."""
        if not self.enabled:
            return np.zeros(self.obs_dim, np.float32), np.ones(self.obs_dim, np.float32)
        mean, var = (self.mean.numpy(), self.var.numpy()) if stats is None else (stats.mean, stats.var)
        inv_std = 1.0 / np.sqrt(var.astype(np.float64) + self.epsilon)
        return mean.copy(), inv_std.astype(np.float32)


def _mlp(owner: keras.Model, hidden_sizes: list[int], activation: str, name: str) -> list[keras.layers.Dense]:
    """Hidden layers with orthogonal init, gain √2 (the common PPO/TRPO initialization).

    Each layer is also set as a named attribute of ``owner``: ``tf.train.Checkpoint`` does not follow
    Keras 3's tracked lists, so layers held only in a list would be left out of every checkpoint.
    """
    init = keras.initializers.Orthogonal(gain=math.sqrt(2.0))
    layers = []
    for i, h in enumerate(hidden_sizes):
        layer = keras.layers.Dense(h, activation=activation, kernel_initializer=init, bias_initializer="zeros",
                                   name=f"{name}_hidden_{i}")
        setattr(owner, f"hidden_{i}", layer)
        layers.append(layer)
    return layers


class _Actor(keras.Model):
    """Shared body: normalize → MLP. Subclasses add the head and the distribution."""

    discrete: bool = False

    def __init__(self, normalizer: ObservationNormalizer, hidden_sizes: list[int], activation: str,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.normalizer = normalizer
        self.hidden = _mlp(self, hidden_sizes, activation, "actor")
        self.activation_name = activation

    def features(self, obs: tf.Tensor) -> tf.Tensor:
        x = self.normalizer(obs)
        for layer in self.hidden:
            x = layer(x)
        return x

    @property
    def head(self) -> keras.layers.Dense:
        """The last Dense layer: the Gaussian's mean, or the Categorical's logits."""
        raise NotImplementedError

    @property
    def state_free_variables(self) -> list[tf.Variable]:
        """Trainable variables of the distribution that no observation reaches (the Gaussian's log-std)."""
        return []

    def distribution(self, head_out: tf.Tensor, state_free: list[tf.Tensor]) -> tfd.Distribution:
        """π(·|s) from the head's output [n, k] and the values of :attr:`state_free_variables`."""
        raise NotImplementedError

    def call(self, obs: tf.Tensor) -> tfd.Distribution:
        return self.distribution(self.head(self.features(obs)), list(self.state_free_variables))

    def deterministic_action(self, obs: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError


class GaussianActor(_Actor):
    """π(a|s) = N(μ_θ(s), diag(exp(2·log_std)))."""

    def __init__(self, normalizer: ObservationNormalizer, act_dim: int, hidden_sizes: list[int],
                 activation: str = "tanh", init_log_std: float = 0.0, **kwargs) -> None:
        super().__init__(normalizer, hidden_sizes, activation, **kwargs)
        self.act_dim = act_dim
        # Small last-layer init: the initial policy is ~zero-mean whatever the observation.
        self.mean_head = keras.layers.Dense(act_dim, kernel_initializer=keras.initializers.Orthogonal(0.01),
                                            bias_initializer="zeros", name="actor_mean")
        self.log_std = self.add_weight(shape=(act_dim,), initializer=keras.initializers.Constant(init_log_std),
                                       trainable=True, name="log_std")

    @property
    def head(self) -> keras.layers.Dense:
        return self.mean_head

    @property
    def state_free_variables(self) -> list[tf.Variable]:
        return [self.log_std]

    def distribution(self, head_out: tf.Tensor, state_free: list[tf.Tensor]) -> tfd.Distribution:
        (log_std,) = state_free
        std = tf.exp(log_std) * tf.ones_like(head_out)
        return tfd.Independent(tfd.Normal(loc=head_out, scale=std), reinterpreted_batch_ndims=1)

    def deterministic_action(self, obs: tf.Tensor) -> tf.Tensor:
        return self.mean_head(self.features(obs))


class CategoricalActor(_Actor):
    """π(a|s) = Categorical(softmax(logits_θ(s)))."""

    discrete = True

    def __init__(self, normalizer: ObservationNormalizer, n_actions: int, hidden_sizes: list[int],
                 activation: str = "tanh", **kwargs) -> None:
        super().__init__(normalizer, hidden_sizes, activation, **kwargs)
        self.n_actions = n_actions
        self.logits_head = keras.layers.Dense(n_actions, kernel_initializer=keras.initializers.Orthogonal(0.01),
                                              bias_initializer="zeros", name="actor_logits")

    @property
    def head(self) -> keras.layers.Dense:
        return self.logits_head

    def distribution(self, head_out: tf.Tensor, state_free: list[tf.Tensor]) -> tfd.Distribution:
        return tfd.Categorical(logits=head_out)

    def deterministic_action(self, obs: tf.Tensor) -> tf.Tensor:
        return tf.argmax(self.logits_head(self.features(obs)), axis=-1)


class Critic(keras.Model):
    """V_φ(s): normalize → MLP → scalar."""

    def __init__(self, normalizer: ObservationNormalizer, hidden_sizes: list[int], activation: str = "tanh",
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.normalizer = normalizer
        self.hidden = _mlp(self, hidden_sizes, activation, "critic")
        self.value_head = keras.layers.Dense(1, kernel_initializer=keras.initializers.Orthogonal(1.0),
                                             bias_initializer="zeros", name="critic_value")

    def call(self, obs: tf.Tensor) -> tf.Tensor:
        return self.value_of_normalized(self.normalizer(obs))

    def value_of_normalized(self, z: tf.Tensor) -> tf.Tensor:
        """V from observations already through the normalizer (the critic fit normalizes its batch once)."""
        for layer in self.hidden:
            z = layer(z)
        return tf.squeeze(self.value_head(z), axis=-1)


def build_models(observation_space: gym.Space, action_space: gym.Space, hidden_sizes: list[int],
                 activation: str = "tanh", init_log_std: float = 0.0, normalize_obs: bool = True,
                 obs_clip: float = 10.0) -> tuple[_Actor, Critic]:
    """Actor and critic for these spaces, sharing one normalizer, with their weights built."""
    if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
        raise ValueError(f"observations must be a 1-D Box, got {observation_space}")
    obs_dim = int(observation_space.shape[0])
    normalizer = ObservationNormalizer(obs_dim, clip=obs_clip, enabled=normalize_obs, name="obs_normalizer")
    if isinstance(action_space, gym.spaces.Discrete):
        actor: _Actor = CategoricalActor(normalizer, int(action_space.n), hidden_sizes, activation, name="actor")
    elif isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        actor = GaussianActor(normalizer, int(action_space.shape[0]), hidden_sizes, activation, init_log_std,
                              name="actor")
    else:
        raise ValueError(f"actions must be Discrete or a 1-D Box, got {action_space}")
    critic = Critic(normalizer, hidden_sizes, activation, name="critic")
    dummy = tf.zeros((1, obs_dim), tf.float32)
    actor(dummy)
    critic(dummy)
    return actor, critic
