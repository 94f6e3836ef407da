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
from trpo_tf.run_errors import RunDirError

RUN_FORMAT = "trpo-tf-run/1"


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

        The newest checkpoint is chosen from the checkpoint files and every tensor of it is read once
        (:mod:`trpo_tf.checkpoint_files`; TensorFlow checks a CRC per tensor), so a truncated or garbled
        ``.data`` file, or a damaged index, is dealt with before anything is restored or written. With
        ``require_checkpoint=False`` only the layout is checked (a resume chooses its checkpoint under the
        run's lock). A run killed before its first checkpoint has none: it can be resumed, not loaded.
        """
        if not self.path.is_dir():
            raise RunDirError(f"run directory {self.path} does not exist")
        if not self.info.is_file() or not self.config.is_file():
            raise RunDirError(f"{self.path} is not a trpo-tf run directory (no run.json / config.yaml)")
        if require_checkpoint and self.latest_checkpoint() is None:
            raise RunDirError(f"{self.path} has no checkpoint yet")
        return self

    def latest_checkpoint(self) -> str | None:
        """The newest intact checkpoint, decided from the files (see :mod:`trpo_tf.checkpoint_files`);
        verified once per RunDir object."""
        from trpo_tf.checkpoint_files import newest_intact

        if not hasattr(self, "_latest"):
            self._latest = newest_intact(self.checkpoints).path
        return self._latest

    def read_info(self) -> RunInfo:
        """``run.json``; a file that is not UTF-8 JSON of the expected shape is a :class:`RunDirError`."""
        try:
            data = json.loads(self.info.read_bytes().decode("utf-8"))
        except OSError as exc:
            raise RunDirError(f"cannot read {self.info}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise RunDirError(f"{self.info} is not UTF-8 text (byte {exc.start}); expected the run's JSON "
                              "description") from None
        except json.JSONDecodeError as exc:
            raise RunDirError(f"{self.info} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise RunDirError(f"{self.info} must hold a JSON object, got {type(data).__name__}")
        if data.get("format") != RUN_FORMAT:
            raise RunDirError(f"{self.info}: unsupported format {data.get('format')!r} (expected {RUN_FORMAT!r})")
        problem = _info_problem(data)
        if problem:
            raise RunDirError(f"{self.info}: {problem}"[:300])
        return RunInfo(**data)

    def write_info(self, info: RunInfo) -> None:
        write_json_atomic(self.info, asdict(info))


def _info_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with a run.json object's keys or value types (None if nothing)."""
    fields = {f: t for f, t in RunInfo.__annotations__.items()}
    unknown, missing = set(data) - set(fields), {f for f in fields if f != "format"} - set(data)
    if unknown or missing:
        return f"unexpected keys {sorted(unknown)}, missing keys {sorted(missing)}"

    def number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    def count(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= 1_000_000

    checks = {
        "task": isinstance(data["task"], str), "gym_id": isinstance(data["gym_id"], str),
        "env_kwargs": isinstance(data["env_kwargs"], dict), "obs_dim": count(data["obs_dim"]),
        "discrete": isinstance(data["discrete"], bool), "act_dim": count(data["act_dim"]),
        "control_hz": number(data["control_hz"]), "package_version": isinstance(data["package_version"], str),
        "obs_layout": isinstance(data["obs_layout"], list) and all(isinstance(f, dict) for f in data["obs_layout"]),
    }
    for key in ("action_low", "action_high"):
        value = data[key]
        checks[key] = (value is None) if data["discrete"] is True else (
            isinstance(value, list) and len(value) == data["act_dim"] and all(number(x) for x in value))
    bad = [key for key, ok in checks.items() if not ok]
    return f"wrong value for {', '.join(bad)}" if bad else None

