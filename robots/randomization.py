"""Domain randomization declared as data: which axes, which ranges, and one episode's draw.

A preset or ``--set randomization=...`` gives a mapping such as
``{mass_scale: [0.8, 1.2], friction_scale: [0.5, 1.5], action_delay_steps: [0, 2]}``; the string
``default`` turns on every axis the task offers at the defaults below, and ``true`` or ``default`` as one
axis's value takes that axis's default (``{default: true, action_delay_steps: [0, 2]}``: all defaults, one
changed). A number fixes an axis; ``[lo, hi]`` draws it uniformly each
episode (integers for the delay). Nothing is randomized unless asked for.

The defaults follow the field (legged_gym: friction U(0.5, 1.25), pushes, per-sensor noise; MuJoCo
Playground: actuator gains, joint-position noise 0.03 rad): see ``docs/sim2real.md``.

Axes (see :data:`AXES`): physics ones go through the task's simulator (:mod:`robots.physics`), the others
are gymnasium wrappers (:mod:`robots.wrappers`). A draw is made per episode from a generator derived from
the seed given to ``reset`` (:func:`episode_rng`), so the same seed gives the same draws and the env's own
generator (its reset noise) is left untouched.

Training axes and the robustness sweep's axes (``export/robustness.py``) mean the same thing: ``mass_scale``
and ``actuator_scale`` are ONE factor for the whole model per episode, exactly what the sweep's ``mass`` and
``actuator`` points apply; the per-body / per-actuator spread is a separate axis (``per_link_mass_scale``,
``per_actuator_scale``) multiplied on top. (Before 2026-11-21 ``mass_scale`` and ``actuator_scale`` drew one
factor per body / actuator; a config with those keys still loads and now means the whole-model factor.)
``contact_softness`` scales MuJoCo's contact and joint-limit time constants (solref): PyBullet's twin has
hard contacts, ≈ ×0.2 of MuJoCo's nominal 20 ms (docs/sim2real.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

PHYSICS_AXES = ("mass_scale", "per_link_mass_scale", "friction_scale", "damping_scale", "actuator_scale",
                "per_actuator_scale", "contact_softness", "com_offset")
PER_ITEM_AXES = ("per_link_mass_scale", "per_actuator_scale")  # one draw per body / actuator, not per model


@dataclass(frozen=True)
class Axis:
    """One randomizable quantity: how it is written, its nominal value and its default setting."""

    name: str
    kind: str  # "scale" (> 0), "count" (integer >= 0), "magnitude" (>= 0), "seconds" (> 0)
    nominal: float
    default: Any  # what ``true`` / ``default`` means for this axis
    unit: str
    description: str
    ranged: bool = True  # accepts [lo, hi] drawn per episode


AXES: dict[str, Axis] = {a.name: a for a in (
    Axis("mass_scale", "scale", 1.0, [0.8, 1.2], "x",
         "every body's mass and inertia × one factor (one draw for the whole model)"),
    Axis("per_link_mass_scale", "scale", 1.0, [0.9, 1.1], "x",
         "each body's mass and inertia × its own factor, on top of mass_scale (one draw per body)"),
    Axis("friction_scale", "scale", 1.0, [0.5, 1.25], "x", "sliding friction of every contact × factor"),
    Axis("damping_scale", "scale", 1.0, [0.8, 1.2], "x", "joint damping × factor"),
    Axis("actuator_scale", "scale", 1.0, [0.9, 1.1], "x",
         "actuator strength (motor gear / torque, servo force limit) × one factor for every actuator"),
    Axis("per_actuator_scale", "scale", 1.0, [0.95, 1.05], "x",
         "each actuator's strength × its own factor, on top of actuator_scale (one draw per actuator)"),
    Axis("contact_softness", "scale", 1.0, [0.2, 1.5], "x",
         "time constant of contacts and joint limits (MuJoCo solref) × factor: < 1 stiffer, > 1 softer; "
         "MuJoCo floors it at 2 timesteps"),
    Axis("com_offset", "magnitude", 0.0, 0.02, "m",
         "base body's centre of mass moved by U(−r, r) per axis (r in m)", ranged=False),
    Axis("action_delay_steps", "count", 0, [0, 1], "steps",
         "the env applies the action commanded k control steps earlier (zero action before the first)"),
    Axis("action_noise", "magnitude", 0.0, 0.02, "action units", "Gaussian noise σ added to each action"),
    Axis("obs_noise_scale", "magnitude", 0.0, 1.0, "x default σ",
         "Gaussian noise on each observation field, σ = factor × the field's default σ (obs_noise_std)"),
    Axis("push_velocity", "magnitude", 0.0, 0.5, "m/s",
         "every push_interval_s, a velocity change U(−v, v) per horizontal axis of the pushed body",
         ranged=False),
)}
SETTINGS = {"push_interval_s": 2.0, "obs_noise_std": None}  # not axes: how pushes and noise are shaped

# Default σ of observation noise by the field's unit (legged_gym: joint position 0.01 rad, angular
# velocity 0.2 rad/s; Playground: joint position 0.03 rad). Contacts ("bool") are left clean.
NOISE_STD_BY_UNIT = {"rad": 0.01, "rad/s": 0.2, "m": 0.005, "m/s": 0.05, "1": 0.01, "bool": 0.0}


class RandomizationError(ValueError):
    """A randomization setting that is not valid (for this task). The message is one readable line."""


@dataclass(frozen=True)
class Randomization:
    """Validated settings: axis name → fixed value or (lo, hi) range; plus push interval and noise σ."""

    axes: Mapping[str, float | tuple[float, float]]
    push_interval_s: float = SETTINGS["push_interval_s"]
    obs_noise_std: Mapping[str, float] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.axes)

    def physics_axes(self) -> dict[str, float | tuple[float, float]]:
        return {k: v for k, v in self.axes.items() if k in PHYSICS_AXES}

    def to_dict(self) -> dict[str, Any]:
        """The JSON/YAML form (ranges as lists); what the exported file records."""
        out: dict[str, Any] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.axes.items()}
        if "push_velocity" in self.axes:
            out["push_interval_s"] = self.push_interval_s
        if self.obs_noise_std:
            out["obs_noise_std"] = dict(self.obs_noise_std)
        return out


OFF = Randomization(axes={})


def parse(data: Any, offered: tuple[str, ...] | None = None, fields: tuple[str, ...] | None = None
          ) -> Randomization:
    """Validate a ``randomization:`` value. ``offered`` (a task's axes) and ``fields`` (its observation field
    names) make the check task-specific; errors are :class:`RandomizationError` with one line."""
    if data is None or data is False or data == {} or data == "off":
        return OFF
    if data == "default" or data is True:
        if offered is None:
            raise RandomizationError("randomization 'default' needs a task (its offered axes)")
        data = {name: "default" for name in offered}
    if not isinstance(data, Mapping):
        raise RandomizationError(f"randomization must be a mapping of axis: value, 'default' or 'off'; got {data!r}")
    if "default" in data:  # {default: true, some_axis: ...}: every offered axis at its default, then overrides
        data = dict(data)
        if data.pop("default") is True:
            if offered is None:
                raise RandomizationError("randomization 'default' needs a task (its offered axes)")
            data = {**{name: "default" for name in offered}, **data}
    axes: dict[str, float | tuple[float, float]] = {}
    interval, noise_std = SETTINGS["push_interval_s"], None
    for key, value in data.items():
        if key == "push_interval_s":
            interval = _number(key, value, positive=True)
            continue
        if key == "obs_noise_std":
            noise_std = _noise_std(value, fields)
            continue
        if key not in AXES:
            names = ", ".join([*AXES, *SETTINGS])
            raise RandomizationError(f"unknown randomization axis {key!r}; known: {names}")
        if offered is not None and key not in offered:
            raise RandomizationError(
                f"this task cannot randomize {key!r}; it offers: {', '.join(offered) or 'nothing'}")
        axis = AXES[key]
        if value is True or value == "default":
            value = axis.default
        axes[key] = _axis_value(axis, value)
    if "push_interval_s" in data and "push_velocity" not in axes:
        raise RandomizationError("push_interval_s is set but push_velocity is not")
    return Randomization(axes=axes, push_interval_s=interval, obs_noise_std=noise_std)


def _number(key: str, value: Any, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RandomizationError(f"randomization {key!r} expects a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise RandomizationError(f"randomization {key!r} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _axis_value(axis: Axis, value: Any) -> float | tuple[float, float]:
    key, positive = axis.name, axis.kind == "scale"
    if isinstance(value, (list, tuple)):
        if not axis.ranged:
            raise RandomizationError(f"randomization {key!r} takes one number ({axis.unit}), got {value!r}")
        if len(value) != 2:
            raise RandomizationError(f"randomization {key!r} range must be [lo, hi], got {value!r}")
        lo, hi = (_number(key, v, positive) for v in value)
        if lo > hi:
            raise RandomizationError(f"randomization {key!r} range [lo, hi] needs lo <= hi, got {list(value)}")
        if axis.kind == "count":
            if not (lo.is_integer() and hi.is_integer()):
                raise RandomizationError(f"randomization {key!r} takes whole steps, got {list(value)}")
            return (int(lo), int(hi))
        return (lo, hi)
    x = _number(key, value, positive)
    if axis.kind == "count":
        if not x.is_integer():
            raise RandomizationError(f"randomization {key!r} takes whole steps, got {value!r}")
        return int(x)
    return x


def _noise_std(value: Any, fields: tuple[str, ...] | None) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise RandomizationError(f"randomization 'obs_noise_std' must map field names to σ, got {value!r}")
    out = {}
    for name, sigma in value.items():
        if fields is not None and name not in fields:
            raise RandomizationError(
                f"obs_noise_std: the observation has no field {name!r}; fields: {', '.join(fields)}")
        out[str(name)] = _number(f"obs_noise_std.{name}", sigma)
    return out


def is_nominal(value: float | tuple[float, float], axis: str) -> bool:
    """True when the axis setting can only give its nominal value (e.g. ``1.0`` or ``[1, 1]`` for a scale)."""
    nominal = AXES[axis].nominal
    if isinstance(value, tuple):
        return value[0] == value[1] == nominal
    return value == nominal


def draw(value: float | tuple[float, float], rng: np.random.Generator, size: int | None = None,
         integer: bool = False) -> Any:
    """One episode's value of an axis: the fixed value, or U(lo, hi) (integers lo..hi inclusive)."""
    if not isinstance(value, tuple):
        return value if size is None else np.full(size, float(value))
    lo, hi = value
    if integer:
        return int(rng.integers(lo, hi + 1))
    return float(rng.uniform(lo, hi)) if size is None else rng.uniform(lo, hi, size)


def episode_rng(seed: int | None, salt: int) -> np.random.Generator:
    """The generator of one randomization stream: derived from the reset seed (and a per-stream salt),
    so the same seed gives the same draws and the env's own generator is not consumed."""
    return np.random.default_rng(None if seed is None else [int(seed) & 0xFFFFFFFFFFFFFFFF, salt])


def default_noise_std(layout: tuple[Any, ...]) -> np.ndarray:
    """Per-element default σ for an observation layout (fields with ``name``, ``size``, ``unit``)."""
    parts = [np.full(f.size, NOISE_STD_BY_UNIT.get(f.unit, 0.0)) for f in layout]
    return np.concatenate(parts) if parts else np.zeros(0)


def noise_std(layout: tuple[Any, ...], settings: Randomization) -> np.ndarray:
    """Per-element σ at ``obs_noise_scale`` = 1: the unit defaults, with ``obs_noise_std`` overrides."""
    sigma = default_noise_std(layout)
    start = 0
    for f in layout:
        if settings.obs_noise_std and f.name in settings.obs_noise_std:
            sigma[start:start + f.size] = settings.obs_noise_std[f.name]
        start += f.size
    return sigma
