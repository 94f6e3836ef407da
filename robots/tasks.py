"""The ONE task resolver: a task name (or any gymnasium id) → what to build and how to describe it.

The learner never sees a task name: the app resolves it here and hands the runner an :class:`EnvFactory`
(a picklable callable that builds one env) and :meth:`ResolvedTask.description` (name, gym id, env kwargs,
observation layout, control rate) for ``run.json``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from robots.factory import randomized
from robots.registry import TaskSpec, find_task, get_task


@dataclass(frozen=True)
class EnvFactory:
    """``gym.make(gym_id, render_mode=..., **env_kwargs)`` as a picklable callable.

    Calling it imports :mod:`robots` first, so it works in a fresh process (forkserver vector-env workers,
    Ray workers) where our tasks are not registered yet.
    """

    gym_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    render_mode: str | None = None
    randomization: Any = None  # a ``randomization:`` mapping (robots/randomization.py); None/{}: nominal

    def __call__(self) -> gym.Env:
        import robots.catalog  # noqa: F401  (registers our tasks in this process)

        env = gym.make(self.gym_id, render_mode=self.render_mode, **self.env_kwargs)
        if self.randomization:
            env = randomized(env, find_task(self.gym_id), self.randomization)
        return env

    def with_render_mode(self, render_mode: str | None) -> "EnvFactory":
        return dataclasses.replace(self, render_mode=render_mode)


@dataclass(frozen=True)
class ResolvedTask:
    """A task name resolved: our registry's :class:`TaskSpec` (``spec``), or None for a plain gymnasium id."""

    name: str
    gym_id: str
    env_kwargs: dict[str, Any]
    spec: TaskSpec | None

    def env_factory(self, env_kwargs: dict[str, Any] | None = None, render_mode: str | None = None,
                    randomization: Any = None) -> EnvFactory:
        """A factory for this task; ``env_kwargs`` are merged over the task's own; ``randomization`` (a
        mapping as in a preset) wraps every env it makes (robots/factory.py)."""
        return EnvFactory(self.gym_id, {**self.env_kwargs, **(env_kwargs or {})}, render_mode, randomization)

    def description(self, env_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
        """What a run records about its task: name, gym id, env kwargs, observation layout and control
        rate (both None for a plain gymnasium id: the learner derives them from the env)."""
        layout = [dataclasses.asdict(f) for f in self.spec.obs_layout] if self.spec is not None else None
        return {"name": self.name, "gym_id": self.gym_id, "env_kwargs": {**self.env_kwargs, **(env_kwargs or {})},
                "obs_layout": layout, "control_hz": float(self.spec.control_hz) if self.spec else None}


def resolve_task(task: str) -> ResolvedTask:
    """A registered task name or gym id, or any gymnasium id; :class:`UnknownTaskError` (listing the
    known names) otherwise."""
    spec = find_task(task)
    if spec is not None:
        return ResolvedTask(spec.name, spec.gym_id, dict(spec.kwargs), spec)
    try:
        gym.spec(task)
    except gym.error.Error:
        get_task(task)  # raises UnknownTaskError listing the known names
    return ResolvedTask(task, task, {}, None)


def make_env(task_or_gym_id: str, env_kwargs: dict[str, Any] | None = None,
             render_mode: str | None = None, randomization: Any = None) -> gym.Env:
    """One env of a task name or gymnasium id (``env_kwargs`` over the task's own), randomized as asked."""
    return resolve_task(task_or_gym_id).env_factory(env_kwargs, render_mode, randomization)()
