"""A two-finger parallel gripper on a Cartesian gantry over a table with a 4 cm cube (our own MJCF).

Tasks: ``gripper-reach`` (``robots/GripperReach-v0``) and ``gripper-pick-lift``
(``robots/GripperPickLift-v0``). The scene is ``robots/assets/gripper_scene.xml``.

The environment is a plain :class:`gymnasium.Env` that owns its ``mujoco.MjModel``/``MjData`` rather than a
``MujocoEnv`` subclass: the action is a Cartesian setpoint displacement (not raw actuator controls), the
observation mixes sites, joints and contacts, and we want exact control of frame skipping, seeding and the
offscreen renderer. Each instance loads its own model, so instances share no state.

Action (4, each in [-1, 1]): ``dx, dy, dz`` move the end-effector setpoint by up to 2 cm per control step
(clamped to the workspace box the position servos accept); ``grip`` sets the finger setpoint
(−1 fully open, +1 closed), like the Cartesian-delta + gripper interface of real arm controllers and of
gymnasium-robotics' Fetch tasks (Plappert et al. 2018, "Multi-Goal Reinforcement Learning").
Reward shaping for pick-lift follows the staged reach/grasp/lift scheme of robosuite's Lift task
(Zhu et al. 2020, "robosuite"): ``1 − tanh(10 d)`` for reaching, a grasp bonus, a lift term and a hold bonus.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from robots.physics import MujocoPhysics
from robots.registry import ObsField, TaskSpec, layout_slices, register_task

SCENE_XML = Path(__file__).parent / "assets" / "gripper_scene.xml"
TASKS = ("reach", "pick_lift")

FRAME_SKIP = 20  # 20 × 2 ms physics steps = 25 Hz control
CONTROL_HZ = 25.0
MAX_STEP = 0.02  # m of setpoint motion per control step at |action| = 1
TABLE_Z = 0.40  # table top height (m), from the scene
CUBE_HALF = 0.02  # half side of the cube (m)
REACH_SUCCESS = 0.02  # m, fingertip centre to target
LIFT_SUCCESS = 0.08  # m, cube bottom above the table while held
LIFT_GOAL = 0.10  # m, goal height of the cube bottom above the table
CUBE_XY_RANGE = 0.10  # cube spawns uniformly in ±10 cm around the table centre
CUBE_YAW_RANGE = 0.3  # rad, cube yaw spawns in ±0.3 rad
REACH_LOW = np.array([-0.12, -0.12, TABLE_Z + 0.03])  # reach targets are drawn from this box
REACH_HIGH = np.array([0.12, 0.12, TABLE_Z + 0.25])
PARKED_CUBE = np.array([0.32, 0.32, TABLE_Z + CUBE_HALF])  # out of the hand's reach (reach task)

_ARM_LAYOUT = (
    ObsField("grip_pos", 3, "m", "fingertip centre (grasp point) x, y, z in the world frame"),
    ObsField("finger_opening", 1, "m", "distance between the finger pads"),
    ObsField("grip_vel", 3, "m/s", "fingertip centre velocity"),
    ObsField("setpoint_error", 3, "m", "servo setpoint minus grip_pos (what the controller commands)"),
)
REACH_LAYOUT = _ARM_LAYOUT + (
    ObsField("goal_pos", 3, "m", "target point"),
    ObsField("goal_rel_grip", 3, "m", "goal_pos − grip_pos"),
)
PICK_LIFT_LAYOUT = _ARM_LAYOUT + (
    ObsField("finger_opening_vel", 1, "m/s", "rate of change of finger_opening"),
    ObsField("cube_pos", 3, "m", "cube centre in the world frame"),
    ObsField("cube_rel_grip", 3, "m", "cube_pos − grip_pos"),
    ObsField("cube_quat", 4, "1", "cube orientation quaternion w, x, y, z (w ≥ 0)"),
    ObsField("cube_vel", 3, "m/s", "cube linear velocity, world frame"),
    ObsField("cube_angvel", 3, "rad/s", "cube angular velocity, cube frame"),
    ObsField("goal_pos", 3, "m", "where the cube should be held (10 cm above its start)"),
    ObsField("goal_rel_cube", 3, "m", "goal_pos − cube_pos"),
)
OBS_LAYOUTS = {"reach": REACH_LAYOUT, "pick_lift": PICK_LIFT_LAYOUT}


_REACH_IDX = layout_slices(REACH_LAYOUT)
_PICK_IDX = layout_slices(PICK_LIFT_LAYOUT)


class GripperEnv(gym.Env):
    """Cartesian two-finger gripper; ``task`` is ``"reach"`` or ``"pick_lift"``."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": int(CONTROL_HZ)}

    def __init__(
        self, task: str = "reach", render_mode: str | None = None, width: int = 480, height: int = 480
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.task = task
        self.render_mode = render_mode
        self.width, self.height = width, height
        self.model = mujoco.MjModel.from_xml_path(str(SCENE_XML))
        self.data = mujoco.MjData(self.model)
        self._renderer: mujoco.Renderer | None = None
        self._physics: MujocoPhysics | None = None

        m = self.model
        self._home = m.body("hand").pos.copy()
        ctrl = m.actuator_ctrlrange
        self._ws_low = self._home + ctrl[:3, 0]
        self._ws_high = self._home + ctrl[:3, 1]
        self._finger_open = float(ctrl[3, 1])
        self._arm_qadr = np.array([m.joint(n).qposadr[0] for n in ("x", "y", "z")])
        self._arm_dadr = np.array([m.joint(n).dofadr[0] for n in ("x", "y", "z")])
        self._finger_qadr = np.array([m.joint(n).qposadr[0] for n in ("finger_l", "finger_r")])
        self._finger_dadr = np.array([m.joint(n).dofadr[0] for n in ("finger_l", "finger_r")])
        self._cube_qadr = int(m.joint("cube").qposadr[0])
        self._cube_dadr = int(m.joint("cube").dofadr[0])
        self._grip_site = int(m.site("grip").id)
        self._cube_geom = int(m.geom("cube").id)
        self._pad_geoms = (int(m.geom("pad_l").id), int(m.geom("pad_r").id))
        self._goal_mocap = int(m.body("goal").mocapid[0])

        self._setpoint = self._home.copy()
        self._goal = np.zeros(3)
        obs_dim = sum(f.size for f in OBS_LAYOUTS[task])
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)

    # --- gymnasium API -------------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        m, d, rng = self.model, self.data, self.np_random
        mujoco.mj_resetData(m, d)
        start = self._home + rng.uniform(-0.02, 0.02, 3)
        d.qpos[self._arm_qadr] = start - self._home
        d.qpos[self._finger_qadr] = self._finger_open
        self._setpoint = start.copy()
        d.ctrl[:3] = start - self._home
        d.ctrl[3:5] = self._finger_open

        if self.task == "reach":
            cube_pos, yaw = PARKED_CUBE, 0.0
            self._goal = rng.uniform(REACH_LOW, REACH_HIGH)
        else:
            xy = rng.uniform(-CUBE_XY_RANGE, CUBE_XY_RANGE, 2)
            cube_pos = np.array([xy[0], xy[1], TABLE_Z + CUBE_HALF])
            yaw = float(rng.uniform(-CUBE_YAW_RANGE, CUBE_YAW_RANGE))
            self._goal = cube_pos + np.array([0.0, 0.0, LIFT_GOAL])
        q = self._cube_qadr
        d.qpos[q : q + 3] = cube_pos
        d.qpos[q + 3 : q + 7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        d.mocap_pos[self._goal_mocap] = self._goal
        mujoco.mj_forward(m, d)
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (4,):
            raise ValueError(f"action must have 4 elements (dx, dy, dz, grip), got shape {np.shape(action)}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {a}")
        a = np.clip(a, -1.0, 1.0)
        self._setpoint = np.clip(self._setpoint + MAX_STEP * a[:3], self._ws_low, self._ws_high)
        self.data.ctrl[:3] = self._setpoint - self._home
        self.data.ctrl[3:5] = self._finger_open * (1.0 - a[3]) / 2.0
        mujoco.mj_step(self.model, self.data, nstep=FRAME_SKIP)
        reward, info = self._reward()
        return self._obs(), reward, False, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called with render_mode=None; pass render_mode='rgb_array'")
            return None
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.height, self.width)
        self._renderer.update_scene(self.data, camera="front")
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def physics(self) -> MujocoPhysics:
        """Randomization through the model: the hand's centre of mass moves; pushes hit the cube (pick-lift)
        or the hand (reach), whose servos then pull it back."""
        if self._physics is None:
            push = "cube" if self.task == "pick_lift" else "hand"
            self._physics = MujocoPhysics(self.model, self.data, base="hand", push_body=push)
        return self._physics

    # --- state read-out ------------------------------------------------------------------------------

    @property
    def grip_pos(self) -> np.ndarray:
        """Fingertip centre (the ``grip`` site) in the world frame."""
        return self.data.site_xpos[self._grip_site].copy()

    @property
    def cube_pos(self) -> np.ndarray:
        return self.data.qpos[self._cube_qadr : self._cube_qadr + 3].copy()

    @property
    def setpoint(self) -> np.ndarray:
        """The servo setpoint of the fingertip centre (always inside the workspace box)."""
        return self._setpoint.copy()

    @property
    def workspace(self) -> tuple[np.ndarray, np.ndarray]:
        """Low and high corners of the box the setpoint is clamped to (world frame, m)."""
        return self._ws_low.copy(), self._ws_high.copy()

    def _pad_contacts(self) -> tuple[bool, bool]:
        """Whether the left and the right pad touch the cube."""
        n = self.data.ncon
        if n == 0:
            return False, False
        pairs = self.data.contact.geom[:n]
        with_cube = pairs[(pairs[:, 0] == self._cube_geom) | (pairs[:, 1] == self._cube_geom)]
        left = bool(np.any(with_cube == self._pad_geoms[0]))
        right = bool(np.any(with_cube == self._pad_geoms[1]))
        return left, right

    def _obs(self) -> np.ndarray:
        d = self.data
        grip = d.site_xpos[self._grip_site]
        opening = 2.0 * d.qpos[self._finger_qadr].mean()
        arm = [grip, [opening], d.qvel[self._arm_dadr], self._setpoint - grip]
        if self.task == "reach":
            parts = arm + [self._goal, self._goal - grip]
        else:
            q, v = self._cube_qadr, self._cube_dadr
            cube = d.qpos[q : q + 3]
            quat = d.qpos[q + 3 : q + 7]
            quat = quat if quat[0] >= 0 else -quat
            opening_vel = 2.0 * d.qvel[self._finger_dadr].mean()
            parts = arm + [
                [opening_vel], cube, cube - grip, quat, d.qvel[v : v + 3], d.qvel[v + 3 : v + 6],
                self._goal, self._goal - cube,
            ]
        return np.concatenate(parts).astype(np.float32)

    def _reward(self) -> tuple[float, dict[str, Any]]:
        grip = self.data.site_xpos[self._grip_site]
        if self.task == "reach":
            dist = float(np.linalg.norm(self._goal - grip))
            success = dist < REACH_SUCCESS
            terms = {"reward_distance": -dist, "reward_success": 1.0 if success else 0.0}
            info = {"distance": dist, "is_success": success}
        else:
            cube = self.cube_pos
            dist = float(np.linalg.norm(cube - grip))
            left, right = self._pad_contacts()
            grasped = left and right
            lift = float(cube[2] - CUBE_HALF - TABLE_Z)
            success = grasped and lift >= LIFT_SUCCESS
            terms = {
                "reward_reach": 1.0 - float(np.tanh(10.0 * dist)),
                "reward_grasp": 0.5 if grasped else 0.0,
                "reward_lift": 2.0 * float(np.clip(lift / LIFT_GOAL, 0.0, 1.0)) if grasped else 0.0,
                "reward_hold": 1.0 if success else 0.0,
            }
            info = {"distance": dist, "grasped": grasped, "lift_height": lift, "is_success": success}
        info.update(terms)
        return float(sum(terms.values())), info


def scripted_action(obs: np.ndarray) -> np.ndarray:
    """A hand-written controller for either task, from the observation alone (layouts above).

    Reach: move straight to the goal. Pick-lift: hover 5 cm above the cube with the fingers open, descend
    to the cube centre, close, and carry the cube to the goal once the pads have closed on it.
    """
    obs = np.asarray(obs, dtype=np.float64)
    reach_dim = sum(f.size for f in REACH_LAYOUT)
    pick_dim = sum(f.size for f in PICK_LIFT_LAYOUT)
    if obs.shape == (reach_dim,):
        return _toward(obs[_REACH_IDX["goal_rel_grip"]], grip_cmd=-1.0)
    if obs.shape != (pick_dim,):
        raise ValueError(f"obs must have shape ({reach_dim},) (reach) or ({pick_dim},) (pick-lift), got {obs.shape}")
    opening = float(obs[_PICK_IDX["finger_opening"]][0])
    cube_rel, goal_rel_cube = obs[_PICK_IDX["cube_rel_grip"]], obs[_PICK_IDX["goal_rel_cube"]]
    horiz = float(np.linalg.norm(cube_rel[:2]))
    at_cube = horiz < 0.01 and abs(cube_rel[2]) < 0.01
    if at_cube and opening < 2 * CUBE_HALF + 0.004:  # closed on the cube: carry it to the goal
        return _toward(goal_rel_cube + cube_rel, grip_cmd=1.0)
    if at_cube:  # in position: close without moving
        return _toward(cube_rel, grip_cmd=1.0)
    if horiz > 0.01:  # line up 5 cm above the cube
        return _toward(cube_rel + np.array([0.0, 0.0, 0.05]), grip_cmd=-1.0)
    return _toward(cube_rel, grip_cmd=-1.0)  # descend


def _toward(delta: np.ndarray, grip_cmd: float) -> np.ndarray:
    """Setpoint displacement covering ``delta`` (m), saturated at one control step."""
    move = np.clip(delta / MAX_STEP, -1.0, 1.0)
    return np.append(move, grip_cmd).astype(np.float32)


# --- registration ----------------------------------------------------------------------------------

REACH_STEPS = 50
PICK_LIFT_STEPS = 100

gym.register(
    id="robots/GripperReach-v0",
    entry_point="robots.mujoco_gripper:GripperEnv",
    max_episode_steps=REACH_STEPS,
    kwargs={"task": "reach"},
)
gym.register(
    id="robots/GripperPickLift-v0",
    entry_point="robots.mujoco_gripper:GripperEnv",
    max_episode_steps=PICK_LIFT_STEPS,
    kwargs={"task": "pick_lift"},
)
register_task(
    TaskSpec(
        name="gripper-reach",
        gym_id="robots/GripperReach-v0",
        simulator="mujoco",
        family="gripper",
        obs_dim=sum(f.size for f in REACH_LAYOUT),
        act_dim=4,
        control_hz=CONTROL_HZ,
        obs_layout=REACH_LAYOUT,
        preset="gripper_reach.yaml",
        description="Move the fingertip centre within 2 cm of a random point above the table; "
        "reward = −distance + 1 on success; 50 steps.",
    )
)
register_task(
    TaskSpec(
        name="gripper-pick-lift",
        gym_id="robots/GripperPickLift-v0",
        simulator="mujoco",
        family="gripper",
        obs_dim=sum(f.size for f in PICK_LIFT_LAYOUT),
        act_dim=4,
        control_hz=CONTROL_HZ,
        obs_layout=PICK_LIFT_LAYOUT,
        preset="gripper_pick_lift.yaml",
        description="Grasp the 4 cm cube and hold it ≥ 8 cm above the table; "
        "reward = reach + grasp + lift + hold terms; 100 steps.",
    )
)
