"""Robustness sweeps of an exported policy: how much return survives when the world differs from training.

TensorFlow-free: every point runs the ONNX file through :func:`export.sim.run_onnx` — the same
``RobotInterface`` / ``ControlLoop`` episode path as ``trpo run-onnx`` — on an env made by
``robots.make_env`` (the task's ``EnvFactory``) with that point's fixed randomization. Each axis is swept on its own, all
others nominal; every point uses the same episode seeds (common random numbers), so differences come from
the axis, not from other draws. The twin simulator (``TaskSpec.twin``) is run when the task has one, and
``points`` adds any combinations the user names.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Iterable, Mapping

import robots
from export.metadata import PolicyMetadata
from export.runtime import OnnxPolicy
from export.sim import run_onnx
from robots.factory import describe
from robots.randomization import AXES, RandomizationError, is_nominal, parse

# sweep axis → (randomization axis, values); "× default" axes are multiplied by the axis default below.
# A sweep value is exactly a training value of that axis: mass and actuator are one factor for the whole
# model (mass_scale, actuator_scale), never the per-body / per-actuator spread (per_*_scale).
SWEEPS: dict[str, tuple[str, tuple[float, ...]]] = {
    "mass": ("mass_scale", (0.6, 0.8, 1.0, 1.2, 1.4)),
    "friction": ("friction_scale", (0.4, 0.7, 1.0, 1.3, 1.6)),
    "actuator": ("actuator_scale", (0.6, 0.8, 1.0, 1.2)),
    "contact": ("contact_softness", (0.2, 0.5, 1.0, 1.5, 2.0)),  # 0.2: MuJoCo's stiffest (2 timesteps)
    "delay": ("action_delay_steps", (0, 1, 2, 3)),
    "obs_noise": ("obs_noise_scale", (0.0, 0.5, 1.0, 1.5, 2.0)),
    "push": ("push_velocity", (0.0, 0.5, 1.0, 1.5, 2.0)),  # × the default push velocity
}
_SCALED_BY_DEFAULT = {"push"}


class SweepError(ValueError):
    """Bad sweep input (an unknown axis, a value out of range); the message is one readable line."""


def axis_settings(name: str, value: float) -> dict[str, Any]:
    """The randomization mapping of one sweep value (``push`` values are multiples of the default)."""
    key, _ = SWEEPS[name]
    if AXES[key].kind == "count" and not float(value).is_integer():
        raise SweepError(f"{name} takes whole steps, got {value:g}")
    if name in _SCALED_BY_DEFAULT:
        value = value * AXES[key].default
    return {key: int(value) if AXES[key].kind == "count" else float(value)}


def parse_point(text: str) -> dict[str, Any]:
    """``"mass=0.8,delay=2"`` → a randomization mapping; keys are sweep axes or randomization axes."""
    out: dict[str, Any] = {}
    for item in text.split(","):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SweepError(f"--point expects key=value[,key=value...], got {text!r}")
        try:
            value = float(raw)
        except ValueError:
            raise SweepError(f"--point {key}: {raw.strip()!r} is not a number") from None
        if key in SWEEPS:
            out.update(axis_settings(key, value))
        elif key in AXES:
            out[key] = int(value) if AXES[key].kind == "count" and value.is_integer() else value
        else:
            raise SweepError(f"--point: unknown axis {key!r}; known: {', '.join([*SWEEPS, *AXES])}")
    return out


def plan(task: str, axes: Iterable[str] | None = None, points: Iterable[str] = ()) -> dict[str, Any]:
    """Validate everything before any episode runs: which axes (those the task offers when ``axes`` is
    None), their values' settings, and the named points. Raises :class:`SweepError`."""
    offered = tuple(describe(task)["axes"])
    spec = robots.find_task(task)
    fields = tuple(f.name for f in spec.obs_layout) if spec is not None else None
    if axes is None:
        chosen = [a for a in SWEEPS if SWEEPS[a][0] in offered]
    else:
        chosen = list(axes)
        unknown = [a for a in chosen if a not in SWEEPS]
        if unknown:
            raise SweepError(f"unknown sweep axis {', '.join(map(repr, unknown))}; known: {', '.join(SWEEPS)}")
        missing = [a for a in chosen if SWEEPS[a][0] not in offered]
        if missing:
            raise SweepError(f"task {task} cannot vary {', '.join(missing)}; it offers "
                             f"{', '.join(a for a in SWEEPS if SWEEPS[a][0] in offered)}")
    sweeps = {a: [(v, axis_settings(a, v)) for v in SWEEPS[a][1]] for a in chosen}
    named = []
    for text in points:
        settings = parse_point(text)
        try:
            parse(settings, offered=offered, fields=fields)
        except RandomizationError as e:
            raise SweepError(f"--point {text}: {e}") from None
        named.append((text, settings))
    return {"offered": offered, "sweeps": sweeps, "points": named, "twin": spec.twin if spec else None}


def _summary(result: Mapping[str, Any], nominal: Mapping[str, Any] | None) -> dict[str, Any]:
    out = {"mean_return": result["mean_return"], "std_return": result["std_return"],
           "mean_length": result["mean_length"]}
    if "success_rate" in result:
        out["success_rate"] = result["success_rate"]
    if nominal is not None:
        base = nominal["mean_return"]
        out["relative_return"] = result["mean_return"] / base if base and math.isfinite(base) else None
        if "success_rate" in result and nominal.get("success_rate"):
            out["relative_success"] = result["success_rate"] / nominal["success_rate"]
    return out


def sweep(onnx_path: str | os.PathLike[str], task: str | None = None, episodes: int = 5, seed: int = 0,
          axes: Iterable[str] | None = None, points: Iterable[str] = (), twin: bool = True,
          progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Run the sweep; returns the JSON-ready report (``nominal``, ``axes``, ``twin``, ``points``).
    ``progress(done, total, label)`` is called after every point."""
    if type(episodes) is not int or episodes < 1:
        raise SweepError(f"episodes must be an integer >= 1, got {episodes!r}")
    meta: PolicyMetadata = OnnxPolicy(onnx_path).metadata
    task = task if task is not None else meta.task
    try:
        robots.get_task(task)
    except robots.UnknownTaskError as e:
        raise SweepError(str(e)) from None
    todo = plan(task, axes, points)
    runs: list[tuple[str, Any, dict[str, Any] | None, str | None]] = [("nominal", None, None, None)]
    for name, values in todo["sweeps"].items():
        runs += [(f"{name}={v:g}", (name, v), s, None) for v, s in values]
    if twin and todo["twin"]:
        runs.append((f"twin {todo['twin']}", "twin", None, todo["twin"]))
    runs += [(f"point {text}", ("point", text), s, None) for text, s in todo["points"]]

    report: dict[str, Any] = {"onnx_path": os.fspath(onnx_path), "task": task, "episodes": episodes, "seed": seed,
                              "trained_under": meta.randomization, "axes": {}, "points": []}
    nominal = None
    for i, (label, where, settings, other_task) in enumerate(runs):
        if nominal is not None and where not in ("twin", None) and where[0] != "point" \
                and all(is_nominal(v, k) for k, v in (settings or {}).items()):
            result = nominal  # an axis at its nominal value is the nominal run (same seeds, same env)
        else:
            result = run_onnx(onnx_path, task=other_task or task, episodes=episodes, seed=seed,
                              randomization=settings)
        if where is None:
            nominal = result
            report["nominal"] = _summary(result, None)
        elif where == "twin":
            report["twin"] = {"task": other_task, **_summary(result, nominal)}
        elif where[0] == "point":
            report["points"].append({"point": where[1], "settings": settings, **_summary(result, nominal)})
        else:
            name, value = where
            report["axes"].setdefault(name, []).append(
                {"value": value, "settings": settings, **_summary(result, nominal)})
        if progress is not None:
            progress(i + 1, len(runs), label)
    return report
