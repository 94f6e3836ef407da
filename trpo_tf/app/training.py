"""Task names → training runs: the conveniences behind ``trpo train``, ``trpo_tf.train``,
``trpo_tf.config_for_task`` and ``trpo_tf.resume``. Here, and only here, a task name meets the learner:
``robots.resolve_task`` gives the env factory and task description that :class:`trpo_tf.runner.Trainer` takes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from trpo_tf.runner import Trainer  # first: TensorFlow before mujoco (MUJOCO_GL=osmesa, trpo_tf/headless.py)
from trpo_tf.app.errors import UsageError
from trpo_tf.config import ConfigError, TRPOConfig, parse_value, read_yaml_mapping
from trpo_tf.env_check import EnvProbe, open_env
from trpo_tf.run_dir import RunDir, TaskDescription
from trpo_tf.run_lock import RunLock

import gymnasium as gym  # noqa: E402  (after TensorFlow)
import robots  # noqa: E402
from robots.factory import settings_for  # noqa: E402
from robots.randomization import RandomizationError  # noqa: E402


def config_for_task(task: str, overrides: dict[str, Any] | None = None) -> TRPOConfig:
    """Defaults ← the task's preset (if any) ← ``overrides``."""
    resolved = robots.resolve_task(task)
    preset = robots.load_preset(resolved.name) if resolved.spec is not None else {}
    return TRPOConfig(task=resolved.name).updated(preset).updated(overrides or {})


def build_config(task: str | None, config_file: str | None = None, overrides: list[str] | tuple[str, ...] = (),
                 flags: dict[str, Any] | None = None) -> TRPOConfig:
    """TRPOConfig from: defaults ← task preset ← ``config_file`` ← ``overrides`` (key=value) ← ``flags``.

    The task is ``task``, else a ``task=`` override, else the file's ``task:`` key. Raises before anything
    is written: UsageError (no task), UnknownTaskError, ConfigError.
    """
    file_data = read_yaml_mapping(config_file) if config_file else {}
    rest, set_task = [], None
    for item in overrides:
        key, sep, raw = item.partition("=")
        if sep and key.strip() == "task":
            set_task = parse_value("task", raw)
        else:
            rest.append(item)
    task = task or set_task or file_data.get("task")
    if not task:
        raise UsageError("train needs --task NAME (see `trpo tasks`), a --config file with a `task:` key, "
                         "or --resume DIR")
    if not isinstance(task, str):
        raise ConfigError(f"config key 'task' expects a task name, got {task!r}")
    config = config_for_task(task)
    config = config.updated({k: v for k, v in file_data.items() if k != "task"})
    config = config.with_overrides(rest)
    return config.updated({k: v for k, v in (flags or {}).items() if v is not None})


def default_run_dir(task: str, prefix: str = "") -> Path:
    """``runs/<prefix><task>-<date>-<time>`` (the task name made safe for a folder name)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in task)
    return Path("runs") / f"{prefix}{safe}-{time.strftime('%Y%m%d-%H%M%S')}"


def resolve_randomization(env: gym.Env, resolved: robots.ResolvedTask, config: TRPOConfig) -> dict[str, Any]:
    """``config.randomization`` checked against what ``env`` (the task's nominal env) offers and written out
    in full (defaults expanded, as config.yaml records it); a bad axis or value is a :class:`ConfigError`."""
    try:
        return settings_for(env, resolved.spec, config.randomization).to_dict()
    except RandomizationError as e:
        raise ConfigError(f"invalid config: {e}") from None


def make_trainer(config: TRPOConfig, run_dir: str | Path, progress: bool = True) -> Trainer:
    """A fresh :class:`Trainer` for ``config.task`` (resolved through ``robots``) in ``run_dir``; training
    envs are randomized as ``config.randomization`` says, the final evaluation's env is nominal.

    ONE probe env: the first env made, so env kwargs the environment rejects are reported here as one line
    (EnvSetupError); the randomization is checked against it and the Trainer gets its spaces and description.
    """
    resolved = robots.resolve_task(config.task)
    task = TaskDescription(**resolved.description(config.env_kwargs))
    env = open_env(resolved.env_factory(config.env_kwargs), config.task, config.env_kwargs)
    try:
        config = config.updated({"randomization": resolve_randomization(env, resolved, config)})
        probe = EnvProbe.of(task, env)
    finally:
        env.close()
    make_env = resolved.env_factory(config.env_kwargs, randomization=config.randomization or None)
    return Trainer(config, run_dir, make_env, task, progress=progress,
                   make_eval_env=resolved.env_factory(config.env_kwargs), probe=probe)


def train(config: TRPOConfig, run_dir: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Train from scratch into ``run_dir`` (default ``runs/<task>-<time>``); returns the final summary."""
    out = Path(run_dir) if run_dir is not None else default_run_dir(config.task)
    return make_trainer(config, out, progress).train()


def resume_trainer(run_dir: str | Path, total_steps: int | None = None, progress: bool = True) -> Trainer:
    """A :class:`Trainer` continuing ``run_dir`` (checked once here) with the env its run.json records.
    A run another process is writing is refused first (RunLockedError names it)."""
    if Path(run_dir).is_dir():
        RunLock.check_free(run_dir)
    run = RunDir(run_dir).check(require_checkpoint=False)
    config = TRPOConfig.load(run.config)
    if total_steps is not None:
        config = config.updated({"total_steps": total_steps})
    info = run.read_info()
    make_env = robots.EnvFactory(info.gym_id, dict(info.env_kwargs), randomization=config.randomization or None)
    return Trainer(config, run_dir, make_env, info.description(), resume=True, progress=progress,
                   make_eval_env=robots.EnvFactory(info.gym_id, dict(info.env_kwargs)))


def resume(run_dir: str | Path, total_steps: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Continue a run from its newest checkpoint up to its configured (or a larger) total."""
    return resume_trainer(run_dir, total_steps, progress).train()


__all__ = ["build_config", "config_for_task", "default_run_dir", "make_trainer", "resume", "resume_trainer",
           "train"]
