"""A trained policy loaded from a run directory: ``act`` for numpy callers, ``tf_action`` for the exporter.

Both compute the same maths the ONNX file bakes in: frozen normalization → Gaussian mean (or argmax) →
clip to the action bounds.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from trpo_tf.acting import NumpyActor
from trpo_tf.config import TRPOConfig
from trpo_tf.models import build_models
from trpo_tf.run_dir import RunDir, RunDirError, RunInfo


class Policy:
    """The deterministic (or sampled) actor of a run, with the run's description."""

    def __init__(self, actor, info: RunInfo, config: TRPOConfig, env_steps: int, iteration: int) -> None:
        self.actor, self.info, self.config = actor, info, config
        self.env_steps, self.iteration = env_steps, iteration
        self.obs_dim, self.discrete = info.obs_dim, info.discrete
        self.act_dim = info.act_dim
        self.action_low = None if info.discrete else np.asarray(info.action_low, np.float32)
        self.action_high = None if info.discrete else np.asarray(info.action_high, np.float32)
        self._numpy = NumpyActor(actor)
        self._rng = np.random.default_rng(config.seed)

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for raw observations: a batch [n, obs_dim] → [n, act_dim] (or [n] discrete); a single
        observation [obs_dim] → one action. Continuous actions are clipped to the bounds."""
        obs = np.asarray(obs, np.float32)
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        if batch.ndim != 2 or batch.shape[1] != self.obs_dim:
            raise ValueError(f"expected observations of shape ({self.obs_dim},) or (n, {self.obs_dim}), "
                             f"got {obs.shape}")
        actions = self._numpy.deterministic(batch) if deterministic else self._numpy.sample(batch, self._rng)
        if not self.discrete:
            actions = np.clip(actions, self.action_low, self.action_high)
        return actions[0] if single else actions

    def tf_action(self, obs: tf.Tensor) -> tf.Tensor:
        """The deterministic action in TensorFlow ops only (what the ONNX export traces)."""
        action = self.actor.deterministic_action(obs)
        if self.discrete:
            return action
        return tf.clip_by_value(action, self.action_low, self.action_high)

    def weights_sha256(self) -> str:
        """SHA-256 over the actor's weights (including the normalizer), in variable order."""
        digest = hashlib.sha256()
        for variable in self.actor.variables:
            digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
        return digest.hexdigest()

    def provenance(self) -> dict[str, Any]:
        """Plain data about where this policy came from, for the exporter to describe it with: ``run_info``
        (run.json as a dict), ``env_steps``, ``seed``, ``weights_sha256`` and ``randomization`` (the config's
        mapping, empty when nominal). Which metadata keys exist is the export side's decision
        (``export.metadata.PolicyMetadata.for_trained_policy``)."""
        return {"run_info": asdict(self.info), "env_steps": self.env_steps, "seed": self.config.seed,
                "weights_sha256": self.weights_sha256(), "randomization": dict(self.config.randomization or {})}


def load_policy(run_dir: str | Path) -> Policy:
    """Rebuild the actor of ``run_dir`` and restore its newest checkpoint (weights + normalizer)."""
    run = RunDir(run_dir).check()
    info = run.read_info()
    config = TRPOConfig.load(run.config)
    obs_space, act_space = info.spaces()
    actor, _ = build_models(obs_space, act_space, config.hidden_sizes, config.activation, config.init_log_std,
                            config.normalize_obs, config.obs_clip)
    counters = tf.Variable([0, 0], dtype=tf.int64)
    path = run.latest_checkpoint()
    try:
        saved = [name for name, _ in tf.train.list_variables(path) if name.startswith("actor/")]
        if len(saved) != len(actor.variables):
            raise ValueError(f"it holds {len(saved)} of the actor's {len(actor.variables)} variables")
        tf.train.Checkpoint(actor=actor, counters=counters).restore(path).expect_partial() \
            .assert_existing_objects_matched()
    except (tf.errors.OpError, AssertionError, ValueError, IndexError) as exc:  # IndexError: truncated .data
        raise RunDirError(f"checkpoint {path} is corrupted or does not match config.yaml: "
                          f"{str(exc).splitlines()[0][:200]}") from None
    return Policy(actor, info, config, env_steps=int(counters[1]), iteration=int(counters[0]))
