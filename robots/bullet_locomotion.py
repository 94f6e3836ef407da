"""PyBullet locomotion tasks: hopper, walker2d, half-cheetah and ant on ``pybullet_data``'s MJCF models.

Gymnasium-native (not the legacy ``pybullet_envs``, which needs the old ``gym``). Reward, control rate
and reset are in :mod:`robots.bullet_walker`; this module holds each robot's joints, motor strengths,
fall rules and documented observation layout, and registers the tasks. Motor strengths (N·m at action
±1) are the tuned ones of ``pybullet_envs/robot_locomotors.py`` (power × per-joint coefficient).
"""

from __future__ import annotations

import gymnasium

from robots.bullet_walker import CONTROL_DT, BulletWalkerEnv, WalkerModel
from robots.registry import ObsField, TaskSpec, register_task

MAX_EPISODE_STEPS = 1000

HOPPER = WalkerModel(
    xml="hopper.xml",
    joints=("thigh_joint", "leg_joint", "foot_joint"),
    torques=(75.0, 75.0, 75.0),  # power 0.75 × 100
    feet=("foot",),
    planar=True,
    min_height=0.8,
    max_pitch=1.0,
)
WALKER2D = WalkerModel(
    xml="walker2d.xml",
    joints=(
        "thigh_joint", "leg_joint", "foot_joint", "thigh_left_joint", "leg_left_joint", "foot_left_joint"
    ),
    torques=(40.0, 40.0, 12.0, 40.0, 40.0, 12.0),  # power 0.40 × (100, 100, 30)
    feet=("foot", "foot_left"),
    planar=True,
    min_height=0.8,
    max_pitch=1.0,
)
HALF_CHEETAH = WalkerModel(
    xml="half_cheetah.xml",
    joints=("bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"),
    torques=(108.0, 81.0, 54.0, 126.0, 54.0, 27.0),  # power 0.90 × (120, 90, 60, 140, 60, 30)
    feet=("bfoot", "ffoot"),
    planar=True,
    max_pitch=1.0,
    bad_contacts=("torso", "bthigh", "bshin", "fthigh", "fshin"),
    terminate_on_fall=False,  # a flipped or kneeling cheetah is penalised (alive −1), not stopped
    camera_distance=3.0,
)
ANT = WalkerModel(
    xml="ant.xml",
    joints=("hip_1", "ankle_1", "hip_2", "ankle_2", "hip_3", "ankle_3", "hip_4", "ankle_4"),
    torques=(250.0,) * 8,  # power 2.5 × 100
    feet=("front_left_foot", "front_right_foot", "left_back_foot", "right_back_foot"),
    planar=False,
    min_height=0.26,  # the torso sphere has radius 0.25: it scrapes the ground
    camera_distance=3.0,
)


class HopperBulletEnv(BulletWalkerEnv):
    """One-legged planar hopper."""

    model = HOPPER


class Walker2dBulletEnv(BulletWalkerEnv):
    """Two-legged planar walker."""

    model = WALKER2D


class HalfCheetahBulletEnv(BulletWalkerEnv):
    """Planar cheetah; never terminates, 1000-step episodes."""

    model = HALF_CHEETAH


class AntBulletEnv(BulletWalkerEnv):
    """Four-legged spatial walker; its torso is the free base."""

    model = ANT


def _joint_fields(joints: tuple[str, ...]) -> list[ObsField]:
    names = [j.removesuffix("_joint") for j in joints]
    pos = [ObsField(f"{n}_pos", 1, "1", "joint angle mapped to [-1, 1] between its limits") for n in names]
    vel = [ObsField(f"{n}_vel", 1, "rad/s", "joint angular velocity") for n in names]
    return pos + vel


def _contact_fields(feet: tuple[str, ...]) -> list[ObsField]:
    return [ObsField(f"{f}_contact", 1, "bool", "1.0 if the link touches the ground, else 0.0") for f in feet]


def observation_layout(model: WalkerModel) -> tuple[ObsField, ...]:
    """The observation vector of :meth:`BulletWalkerEnv._observe`, field by field."""
    height = ObsField("height", 1, "m", "torso z minus its standing height at load")
    if model.planar:
        base = [
            height,
            ObsField("vel_x", 1, "m/s", "torso forward velocity (world x)"),
            ObsField("vel_z", 1, "m/s", "torso vertical velocity"),
            ObsField("pitch", 1, "rad", "torso pitch, unwrapped; + leans forward"),
            ObsField("pitch_rate", 1, "rad/s", "torso pitch velocity"),
        ]
    else:
        base = [
            height,
            ObsField("heading_sin", 1, "1", "sin of the heading error to the +x direction (−yaw)"),
            ObsField("heading_cos", 1, "1", "cos of the heading error to the +x direction"),
            ObsField("vel_body", 3, "m/s", "torso velocity x, y, z in the yaw-aligned frame"),
            ObsField("angvel_body", 3, "rad/s", "torso angular velocity x, y, z in the yaw-aligned frame"),
            ObsField("roll", 1, "rad", "torso roll"),
            ObsField("pitch", 1, "rad", "torso pitch"),
        ]
    return tuple(base + _joint_fields(model.joints) + _contact_fields(model.feet))


_REWARD = "reward = forward velocity + alive (±1) − electricity − joints-at-limit"
_TASKS = [
    ("hopper-bullet", "robots/HopperBullet-v0", "HopperBulletEnv", HOPPER, "hopper_bullet.yaml",
     f"PyBullet one-legged hopper; {_REWARD}; falls when torso z ≤ 0.8 m or |pitch| ≥ 1 rad."),
    ("walker2d-bullet", "robots/Walker2dBullet-v0", "Walker2dBulletEnv", WALKER2D, "walker2d_bullet.yaml",
     f"PyBullet planar biped; {_REWARD}; falls when torso z ≤ 0.8 m or |pitch| ≥ 1 rad."),
    ("half-cheetah-bullet", "robots/HalfCheetahBullet-v0", "HalfCheetahBulletEnv", HALF_CHEETAH,
     "half_cheetah_bullet.yaml",
     f"PyBullet planar cheetah; {_REWARD}; never terminates: alive is −1 while |pitch| ≥ 1 rad or "
     "torso/thigh/shin touch the ground."),
    ("ant-bullet", "robots/AntBullet-v0", "AntBulletEnv", ANT, "ant_bullet.yaml",
     f"PyBullet quadruped running along +x; {_REWARD}; falls when torso z ≤ 0.26 m."),
]

for _name, _gym_id, _cls, _model, _preset, _description in _TASKS:
    if _gym_id not in gymnasium.registry:
        gymnasium.register(
            id=_gym_id, entry_point=f"robots.bullet_locomotion:{_cls}", max_episode_steps=MAX_EPISODE_STEPS
        )
    _layout = observation_layout(_model)
    register_task(
        TaskSpec(
            name=_name,
            gym_id=_gym_id,
            simulator="pybullet",
            family="locomotion",
            obs_dim=sum(f.size for f in _layout),
            act_dim=len(_model.joints),
            control_hz=round(1.0 / CONTROL_DT, 6),
            obs_layout=_layout,
            preset=_preset,
            description=_description,
        )
    )
