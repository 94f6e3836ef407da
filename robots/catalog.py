"""Importing this module registers every task (each task module registers its own on import).

``robots/__init__`` imports it; :class:`robots.tasks.EnvFactory` imports it in fresh processes (subprocess
vector-env workers, Ray workers) before ``gymnasium.make``.
"""

from robots import gymnasium_tasks  # noqa: F401  (MuJoCo v5 robots, classic control)
from robots import bullet_locomotion  # noqa: F401  (PyBullet hopper, walker2d, half-cheetah, ant)
from robots import mujoco_gripper  # noqa: F401  (MuJoCo gripper: reach, pick-lift)
from robots import bullet_gripper  # noqa: F401  (PyBullet Franka Panda: reach, pick-lift)
from robots import hopper_twin  # noqa: F401  (one hopper model in MuJoCo and PyBullet)
