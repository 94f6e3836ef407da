"""The run directory: what a training run writes and what ``load_policy``/export/resume read back.

    config.yaml     fully resolved TRPOConfig
    run.json        the task and spaces (obs_dim, action bounds, layout, control rate), package version
    checkpoints/    tf.train.CheckpointManager (last N kept; a half-written one is never listed)
    metrics.csv     one row per iteration
    tb/             TensorBoard events
    eval.json       deterministic evaluation;  policy.onnx + policy.onnx.json after export
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from trpo_tf.files import write_json_atomic

RUN_FORMAT = "trpo-tf-run/1"


class RunDirError(ValueError):
    """A missing, foreign or damaged run directory. Its message is one readable line."""


@dataclass(frozen=True)
class TaskDescription:
    """What the runner records about its task (it never resolves task names itself): the name, the
    gymnasium id and kwargs its env factory builds, the observation layout (a list of
    ``{"name", "size", "unit", "description"}``) and the control rate; None = derive from the env."""

    name: str
    gym_id: str
    env_kwargs: dict[str, Any]
    obs_layout: list[dict[str, Any]] | None = None
    control_hz: float | None = None


@dataclass
class RunInfo:
    """Everything about a run that does not change while it trains (``run.json``)."""

    task: str
    gym_id: str
    env_kwargs: dict[str, Any]
    obs_dim: int
    discrete: bool
    act_dim: int  # action dimensions, or the number of discrete actions
    action_low: list[float] | None
    action_high: list[float] | None
    control_hz: float
    obs_layout: list[dict[str, Any]]
    package_version: str
    format: str = RUN_FORMAT

    @classmethod
    def from_env(cls, task: "TaskDescription", env: gym.Env) -> "RunInfo":
        """Describe ``env`` built for ``task``; a layout or control rate the task does not give is derived
        from the env (one unnamed field per observation entry; 1 / dt)."""
        from trpo_tf import __version__

        obs_space, act_space = env.observation_space, env.action_space
        obs_dim = int(obs_space.shape[0])
        discrete = isinstance(act_space, gym.spaces.Discrete)
        layout = task.obs_layout
        if layout is None:
            layout = [{"name": f"obs_{i}", "size": 1, "unit": "", "description": ""} for i in range(obs_dim)]
        control_hz = task.control_hz
        if control_hz is None:
            dt = getattr(env.unwrapped, "dt", None) or getattr(env.unwrapped, "tau", None)
            fps = env.metadata.get("render_fps")
            control_hz = float(1.0 / dt) if dt else float(fps or 0.0)
        return cls(
            task=task.name, gym_id=task.gym_id, env_kwargs=dict(task.env_kwargs), obs_dim=obs_dim,
            discrete=discrete, act_dim=int(act_space.n) if discrete else int(act_space.shape[0]),
            action_low=None if discrete else [float(x) for x in act_space.low],
            action_high=None if discrete else [float(x) for x in act_space.high],
            control_hz=float(control_hz), obs_layout=[dict(f) for f in layout], package_version=__version__)

    def description(self) -> "TaskDescription":
        """The task description this run was made from (what a resume hands the runner again)."""
        return TaskDescription(self.task, self.gym_id, dict(self.env_kwargs), list(self.obs_layout),
                               self.control_hz)

    def spaces(self) -> tuple[gym.spaces.Box, gym.spaces.Space]:
        obs = gym.spaces.Box(-np.inf, np.inf, (self.obs_dim,), np.float32)
        if self.discrete:
            return obs, gym.spaces.Discrete(self.act_dim)
        low = np.array([x if math.isfinite(x) else -np.inf for x in self.action_low], np.float32)
        high = np.array([x if math.isfinite(x) else np.inf for x in self.action_high], np.float32)
        return obs, gym.spaces.Box(low, high, dtype=np.float32)


class RunDir:
    """Paths inside one run directory."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.info = self.path / "run.json"
        self.checkpoints = self.path / "checkpoints"
        self.metrics = self.path / "metrics.csv"
        self.tensorboard = self.path / "tb"
        self.eval = self.path / "eval.json"
        self.onnx = self.path / "policy.onnx"

    def check(self, require_checkpoint: bool = True) -> "RunDir":
        """THE run-directory check: raise :class:`RunDirError` (one readable line) unless this is a trpo-tf
        run whose newest checkpoint (required unless ``require_checkpoint=False``) reads back completely.

        Every tensor of the newest checkpoint is read once, so a truncated or garbled ``.data`` file
        (TensorFlow checks a CRC per tensor) is reported before anything is restored or written. A run
        killed before its first checkpoint has none: it can be resumed (from the start), not loaded.
        """
        if not self.path.is_dir():
            raise RunDirError(f"run directory {self.path} does not exist")
        if not self.info.is_file() or not self.config.is_file():
            raise RunDirError(f"{self.path} is not a trpo-tf run directory (no run.json / config.yaml)")
        path = self.latest_checkpoint()
        if path is None:
            if require_checkpoint:
                raise RunDirError(f"{self.path} has no checkpoint yet")
            return self
        import tensorflow as tf

        try:
            reader = tf.train.load_checkpoint(path)
            for name in reader.get_variable_to_shape_map():
                reader.get_tensor(name)
        except Exception as exc:  # TF raises DataLossError, IndexError or ValueError depending on the damage
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise RunDirError(f"checkpoint {path} is corrupted: {detail}") from None
        return self

    def latest_checkpoint(self) -> str | None:
        import tensorflow as tf

        return tf.train.latest_checkpoint(str(self.checkpoints)) if self.checkpoints.is_dir() else None

    def read_info(self) -> RunInfo:
        try:
            data = json.loads(self.info.read_text(encoding="utf-8"))
            if data.get("format") != RUN_FORMAT:
                raise RunDirError(f"{self.info}: unsupported format {data.get('format')!r}")
            return RunInfo(**data)
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise RunDirError(f"cannot read {self.info}: {exc}") from None

    def write_info(self, info: RunInfo) -> None:
        write_json_atomic(self.info, asdict(info))
