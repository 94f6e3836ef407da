"""Randomization where envs are made: :class:`robots.tasks.EnvFactory` calls :func:`randomized` on every env
it builds when it carries a ``randomization`` mapping; :func:`describe` says what a task can randomize.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from robots.randomization import AXES, Randomization, RandomizationError, noise_std, parse
from robots.registry import TaskSpec, find_task
from robots.wrappers import offered_axes, randomize


def randomized(env: gym.Env, spec: TaskSpec | None, randomization: Any) -> gym.Env:
    """``env`` wrapped by its validated randomization (closed again if the settings are refused)."""
    try:
        settings = settings_for(env, spec, randomization)
        if not settings.enabled:
            return env
        layout = spec.obs_layout if spec is not None else ()
        if not layout and "obs_noise_scale" in settings.axes:
            raise RandomizationError("this task has no observation layout: obs_noise_scale needs one")
        control_hz = spec.control_hz if spec is not None else 1.0 / getattr(env.unwrapped, "dt", 1.0)
        return randomize(env, settings, layout, control_hz)
    except Exception:
        env.close()
        raise


def settings_for(env: gym.Env, spec: TaskSpec | None, randomization: Any) -> Randomization:
    """Validate ``randomization`` against what this env offers (a :class:`RandomizationError` if not)."""
    if isinstance(randomization, Randomization):
        randomization = randomization.to_dict() if randomization.enabled else None
    fields = tuple(f.name for f in spec.obs_layout) if spec is not None else None
    return parse(randomization, offered=offered_axes(env), fields=fields)


def describe(task: str) -> dict[str, Any]:
    """What ``task`` can randomize: each offered axis with its unit, default and meaning, the push
    interval, and the default observation-noise σ of each field."""
    spec = find_task(task)
    env = gym.make(spec.gym_id, **spec.kwargs) if spec is not None else gym.make(task)
    try:
        offered = offered_axes(env)
    finally:
        env.close()
    out: dict[str, Any] = {"axes": {name: {"default": AXES[name].default, "nominal": AXES[name].nominal,
                                           "unit": AXES[name].unit, "description": AXES[name].description}
                                    for name in offered}}
    if "push_velocity" in offered:
        out["push_interval_s"] = Randomization(axes={}).push_interval_s
    if spec is not None and spec.obs_layout:
        sigma = noise_std(spec.obs_layout, Randomization(axes={}))
        start, fields = 0, {}
        for f in spec.obs_layout:
            fields[f.name] = float(sigma[start])
            start += f.size
        out["obs_noise_std"] = fields
    return out
