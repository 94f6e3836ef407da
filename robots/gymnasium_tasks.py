"""gymnasium's own MuJoCo v5 robots (and two classic-control tasks used for quick checks and tests).

These environments already exist in gymnasium; here they get a short name, a documented observation
layout (the order gymnasium's v5 source builds the vector in) and a tuned preset.
"""

from __future__ import annotations

from robots.registry import ObsField, TaskSpec, register_task


def _planar_layout(joints: list[str]) -> tuple[ObsField, ...]:
    """qpos without root x, then all qvel — the layout of Hopper/Walker2d/HalfCheetah v5."""
    pos = [ObsField("root_z", 1, "m", "torso height"), ObsField("root_pitch", 1, "rad", "torso angle")]
    pos += [ObsField(f"{j}_angle", 1, "rad") for j in joints]
    vel = [
        ObsField("root_vx", 1, "m/s", "forward velocity"),
        ObsField("root_vz", 1, "m/s", "vertical velocity"),
        ObsField("root_pitch_rate", 1, "rad/s"),
    ]
    vel += [ObsField(f"{j}_velocity", 1, "rad/s") for j in joints]
    return tuple(pos + vel)


_HOPPER_JOINTS = ["thigh", "leg", "foot"]


def hopper_layout() -> tuple[ObsField, ...]:
    """Hopper-v5's observation layout (shared with the twin hopper in ``robots/hopper_twin.py``)."""
    return _planar_layout(_HOPPER_JOINTS)

_WALKER_JOINTS = ["thigh", "leg", "foot", "thigh_left", "leg_left", "foot_left"]
_CHEETAH_JOINTS = ["bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"]
_ANT_JOINTS = [f"{kind}_{i}" for i in range(1, 5) for kind in ("hip", "ankle")]

register_task(
    TaskSpec(
        name="hopper",
        gym_id="Hopper-v5",
        simulator="mujoco",
        family="locomotion",
        obs_dim=11,
        act_dim=3,
        control_hz=125.0,
        obs_layout=_planar_layout(_HOPPER_JOINTS),
        preset="hopper.yaml",
        description="One-legged planar hopper; reward = forward velocity + alive − control cost.",
    )
)
register_task(
    TaskSpec(
        name="walker2d",
        gym_id="Walker2d-v5",
        simulator="mujoco",
        family="locomotion",
        obs_dim=17,
        act_dim=6,
        control_hz=125.0,
        obs_layout=_planar_layout(_WALKER_JOINTS),
        preset="walker2d.yaml",
        description="Two-legged planar walker.",
    )
)
register_task(
    TaskSpec(
        name="half-cheetah",
        gym_id="HalfCheetah-v5",
        simulator="mujoco",
        family="locomotion",
        obs_dim=17,
        act_dim=6,
        control_hz=20.0,
        obs_layout=_planar_layout(_CHEETAH_JOINTS),
        preset="half_cheetah.yaml",
        description="Planar cheetah; never terminates, 1000-step episodes.",
    )
)
register_task(
    TaskSpec(
        name="ant",
        gym_id="Ant-v5",
        simulator="mujoco",
        family="locomotion",
        obs_dim=27,
        act_dim=8,
        control_hz=20.0,
        obs_layout=(
            ObsField("torso_z", 1, "m"),
            ObsField("torso_quat", 4, "1", "orientation quaternion w, x, y, z"),
            *[ObsField(f"{j}_angle", 1, "rad") for j in _ANT_JOINTS],
            ObsField("torso_linvel", 3, "m/s"),
            ObsField("torso_angvel", 3, "rad/s"),
            *[ObsField(f"{j}_velocity", 1, "rad/s") for j in _ANT_JOINTS],
        ),
        preset="ant.yaml",
        description="Quadruped; contact forces left out of the observation (a real robot has none).",
        kwargs={"include_cfrc_ext_in_observation": False},
    )
)
register_task(
    TaskSpec(
        name="inverted-pendulum",
        gym_id="InvertedPendulum-v5",
        simulator="mujoco",
        family="control",
        obs_dim=4,
        act_dim=1,
        control_hz=25.0,
        obs_layout=(
            ObsField("cart_position", 1, "m"),
            ObsField("pole_angle", 1, "rad"),
            ObsField("cart_velocity", 1, "m/s"),
            ObsField("pole_angular_velocity", 1, "rad/s"),
        ),
        preset="inverted_pendulum.yaml",
        description="Cart-pole balancing with a continuous force; 1000 is the maximum return.",
    )
)
register_task(
    TaskSpec(
        name="cartpole",
        gym_id="CartPole-v1",
        simulator="classic",
        family="control",
        obs_dim=4,
        act_dim=2,
        control_hz=50.0,
        obs_layout=(
            ObsField("cart_position", 1, "m"),
            ObsField("cart_velocity", 1, "m/s"),
            ObsField("pole_angle", 1, "rad"),
            ObsField("pole_angular_velocity", 1, "rad/s"),
        ),
        preset="cartpole.yaml",
        description="Discrete push left/right; 500 is the maximum return.",
    )
)
