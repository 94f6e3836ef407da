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

# Each module registers its tasks on import.
from robots import gymnasium_tasks  # noqa: F401,E402  (MuJoCo v5 robots, classic control)
from robots import bullet_locomotion  # noqa: F401,E402  (PyBullet hopper, walker2d, half-cheetah, ant)
from robots import mujoco_gripper  # noqa: F401,E402  (MuJoCo gripper: reach, pick-lift)
from robots import bullet_gripper  # noqa: F401,E402  (PyBullet Franka Panda: reach, pick-lift)

__all__ = [
    "ObsField",
    "TaskSpec",
    "UnknownTaskError",
    "find_task",
    "get_task",
    "list_tasks",
    "load_preset",
    "register_task",
]
