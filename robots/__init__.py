"""Robot tasks for trpo-tf: MuJoCo and PyBullet, locomotion and gripper, as gymnasium environments.

Importing this package registers every task with gymnasium (``gymnasium.make(spec.gym_id)``) and
with the registry below (``robots.list_tasks()``).
"""

from robots.registry import (
    ObsField,
    TaskSpec,
    UnknownTaskError,
    find_task,
    get_task,
    list_tasks,
    load_preset,
    register_task,
)
from robots.tasks import EnvFactory, ResolvedTask, make_env, resolve_task

from robots import catalog  # noqa: F401,E402  (registers every task)

__all__ = [
    "EnvFactory",
    "ResolvedTask",
    "make_env",
    "resolve_task",
    "ObsField",
    "TaskSpec",
    "UnknownTaskError",
    "find_task",
    "get_task",
    "list_tasks",
    "load_preset",
    "register_task",
]
