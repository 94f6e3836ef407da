"""Task registry: short task names → gymnasium ids, simulator, family, observation layout, preset.

Every task is a plain gymnasium environment, registered with ``gymnasium.register`` when its module is
imported, so ``gymnasium.make(spec.gym_id)`` works and subprocess vector envs can rebuild it by id.
The observation layout travels into the exported ONNX metadata: it is the contract with the robot.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PRESET_DIR = Path(__file__).parent / "presets"


@dataclass(frozen=True)
class ObsField:
    """One contiguous slice of the observation vector."""

    name: str
    size: int
    unit: str
    description: str = ""


def layout_slices(layout: tuple[ObsField, ...]) -> dict[str, slice]:
    """Each field name of an observation layout → its slice of the observation vector."""
    out, start = {}, 0
    for f in layout:
        out[f.name] = slice(start, start + f.size)
        start += f.size
    return out


@dataclass(frozen=True)
class TaskSpec:
    """What a user (and the exporter) needs to know about a task."""

    name: str
    gym_id: str
    simulator: str  # "mujoco" | "pybullet" | "classic"
    family: str  # "locomotion" | "gripper" | "control"
    obs_dim: int
    act_dim: int  # number of discrete actions for Discrete spaces
    control_hz: float
    obs_layout: tuple[ObsField, ...]
    preset: str | None = None  # file name in robots/presets/
    description: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)  # passed to gymnasium.make
    twin: str | None = None  # the same robot and contract in the other simulator (robots/hopper_twin.py)

    def __post_init__(self) -> None:
        total = sum(f.size for f in self.obs_layout)
        if self.obs_layout and total != self.obs_dim:
            raise ValueError(f"task {self.name}: obs_layout sums to {total}, obs_dim is {self.obs_dim}")

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["obs_layout"] = [dataclasses.asdict(f) for f in self.obs_layout]
        return d


class UnknownTaskError(KeyError):
    """A task name or gym id that is neither registered here nor in gymnasium."""

    def __str__(self) -> str:  # KeyError quotes its message; a user wants the plain line
        return str(self.args[0])


_TASKS: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec) -> TaskSpec:
    """Add a task to the registry (idempotent for an identical spec)."""
    old = _TASKS.get(spec.name)
    if old is not None and old != spec:
        raise ValueError(f"task {spec.name!r} registered twice with different specs")
    _TASKS[spec.name] = spec
    return spec


def list_tasks() -> list[TaskSpec]:
    """All registered tasks, sorted by simulator, family, name."""
    return sorted(_TASKS.values(), key=lambda s: (s.simulator, s.family, s.name))


def find_task(name_or_id: str) -> TaskSpec | None:
    """The registered task with this short name or gym id, else None."""
    if name_or_id in _TASKS:
        return _TASKS[name_or_id]
    for spec in _TASKS.values():
        if spec.gym_id == name_or_id:
            return spec
    return None


def get_task(name_or_id: str) -> TaskSpec:
    """Like :func:`find_task` but raises :class:`UnknownTaskError` with the known names."""
    spec = find_task(name_or_id)
    if spec is None:
        names = ", ".join(sorted(_TASKS))
        raise UnknownTaskError(f"unknown task {name_or_id!r}; known tasks: {names} (or any gymnasium id)")
    return spec


def load_preset(name_or_id: str) -> dict[str, Any]:
    """The tuned hyperparameters of a registered task ({} if it has no preset)."""
    spec = get_task(name_or_id)
    if spec.preset is None:
        return {}
    with open(PRESET_DIR / spec.preset, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"preset {spec.preset} is not a mapping")
    return data
