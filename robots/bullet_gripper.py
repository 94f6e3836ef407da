"""PyBullet Franka Panda gripper tasks: reach a point, pick a cube and lift it.

Both tasks share the interface of a real arm controller: the action is an end-effector displacement
(dx, dy, dz) in [-1, 1] scaled to at most ``MAX_DELTA`` per control step, with the target clamped to a
workspace box above the table, plus a gripper command in [-1, 1] (-1 open, +1 closed). The gripper keeps a
fixed fingers-down orientation. Physics runs at 240 Hz with 10 substeps per action: 24 Hz control.

Rewards are dense and shaped in the spirit of panda-gym's dense tasks (Gallouédec et al. 2021,
"panda-gym: Open-source goal-conditioned environments for robotic learning"); every term is returned in
``info["reward_terms"]`` and ``info["is_success"]`` carries the success rule.

Scripted controllers (:func:`scripted_reach`, :class:`ScriptedPickLift`) act from the observation alone,
through the documented layout, and solve both tasks; the tests use them as a sanity bound.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import pybullet as p
from gymnasium import spaces

from robots.physics import BulletPhysics
from robots.bullet_panda import CUBE_HALF, PandaScene, PandaState
from robots.registry import ObsField, TaskSpec, layout_slices, register_task

MAX_DELTA = 0.02  # m per control step for an action of 1 (48 cm/s at 24 Hz)
WORKSPACE_LOW = np.array([0.25, -0.30, 0.02])  # m, end-effector target box (table top is z = 0)
WORKSPACE_HIGH = np.array([0.65, 0.30, 0.35])
HOME = np.array([0.45, 0.0, 0.25])  # m, end effector at reset (plus up to ±HOME_NOISE)
HOME_NOISE = 0.03
REACH_GOAL_LOW = np.array([0.30, -0.25, 0.05])
REACH_GOAL_HIGH = np.array([0.60, 0.25, 0.30])
REACH_SUCCESS = 0.025  # m
REACH_BONUS = 1.0
CUBE_LOW = np.array([0.35, -0.15])  # m, cube centre x, y at reset
CUBE_HIGH = np.array([0.60, 0.15])
CUBE_YAW = 0.3  # rad, cube yaw at reset is uniform in ±CUBE_YAW
LIFT_GOAL = 0.12  # m, goal for the cube's bottom face above the table
LIFT_SUCCESS = 0.08  # m, success when the held cube's bottom face is this high
GRASP_BONUS = 0.25
HOLD_BONUS = 1.0
CONTROL_HZ = 24.0

_COMMON_LAYOUT = (
    ObsField("ee_pos", 3, "m", "end-effector (between fingertips) position, world frame, base at origin"),
    ObsField("ee_vel", 3, "m/s", "end-effector linear velocity, world frame"),
    ObsField("finger_opening", 1, "m", "distance between the two fingers, 0 closed … 0.08 open"),
)
REACH_LAYOUT = _COMMON_LAYOUT + (
    ObsField("goal_pos", 3, "m", "target point for the end effector"),
    ObsField("goal_rel_ee", 3, "m", "goal_pos − ee_pos"),
)
PICK_LIFT_LAYOUT = _COMMON_LAYOUT + (
    ObsField("cube_pos", 3, "m", "cube centre, world frame"),
    ObsField("cube_rel_ee", 3, "m", "cube_pos − ee_pos"),
    ObsField("cube_quat", 4, "1", "cube orientation quaternion x, y, z, w with w >= 0"),
    ObsField("cube_vel", 3, "m/s", "cube linear velocity"),
    ObsField("goal_pos", 3, "m", "lift target for the cube centre (above its start position)"),
    ObsField("goal_rel_cube", 3, "m", "goal_pos − cube_pos"),
)


class _PandaEnv(gymnasium.Env):
    """Shared plumbing: spaces, action → Cartesian command, rendering, closing."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}
    layout: tuple[ObsField, ...] = ()
    with_cube = False

    def __init__(self, render_mode: str | None = None, width: int = 320, height: int = 240,
                 substeps: int = 10, ik_iterations: int = 10) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self._size = (width, height)
        self.scene = PandaScene(with_cube=self.with_cube, substeps=substeps, ik_iterations=ik_iterations)
        dim = sum(f.size for f in self.layout)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(dim,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
        self.goal = np.zeros(3)
        self._state: PandaState | None = None
        self._physics: BulletPhysics | None = None

    def _reset_arm(self) -> None:
        self.scene.reset_arm(HOME + self.np_random.uniform(-HOME_NOISE, HOME_NOISE, size=3))

    def _apply(self, action: np.ndarray) -> PandaState:
        """Clamp the action, command the arm, simulate one control period and read the state."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (4,):
            raise ValueError(f"expected an action of shape (4,) = (dx, dy, dz, gripper), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {a}")
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        a = np.clip(a, -1.0, 1.0)
        target = np.clip(self._state.ee_pos + MAX_DELTA * a[:3], WORKSPACE_LOW, WORKSPACE_HIGH)
        self.scene.command(target, a[3])
        self.scene.simulate()
        self._state = self.scene.read()
        return self._state

    def physics(self) -> BulletPhysics:
        """Randomization: link masses (arm and cube), friction, joint force limits; pushes hit the cube."""
        if self._physics is None:
            scene = self.scene

            def bodies() -> list[int]:
                return [scene.robot, scene.table] + ([scene.cube] if scene.cube is not None else [])

            self._physics = BulletPhysics(scene.client, bodies, strength=scene.forces,
                                          push=self._push_cube if self.with_cube else None)
        return self._physics

    def _push_cube(self, dv: np.ndarray) -> None:
        scene = self.scene
        lin, ang = p.getBaseVelocity(scene.cube, physicsClientId=scene.client)
        p.resetBaseVelocity(scene.cube, [lin[0] + float(dv[0]), lin[1] + float(dv[1]), lin[2]], ang,
                            physicsClientId=scene.client)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.scene.render(*self._size)

    def close(self) -> None:
        self.scene.close()


class PandaReachEnv(_PandaEnv):
    """Move the end effector to a random point; reward −distance + bonus within 2.5 cm."""

    layout = REACH_LAYOUT
    with_cube = False

    def _obs(self) -> np.ndarray:
        s = self._state
        assert s is not None
        return np.concatenate(
            [s.ee_pos, s.ee_vel, [s.finger_opening], self.goal, self.goal - s.ee_pos]
        ).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._reset_arm()
        self.goal = self.np_random.uniform(REACH_GOAL_LOW, REACH_GOAL_HIGH)
        self._state = self.scene.read()
        distance = float(np.linalg.norm(self.goal - self._state.ee_pos))
        return self._obs(), {"is_success": distance < REACH_SUCCESS, "distance": distance}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        s = self._apply(action)
        distance = float(np.linalg.norm(self.goal - s.ee_pos))
        success = distance < REACH_SUCCESS
        terms = {"distance": -distance, "success": REACH_BONUS if success else 0.0}
        info = {"is_success": success, "distance": distance, "reward_terms": terms}
        return self._obs(), float(sum(terms.values())), False, False, info


class PandaPickLiftEnv(_PandaEnv):
    """Grasp a 5 cm cube with both fingers and lift it at least 8 cm above the table.

    reward = −|cube − ee| (reach) + 0.25·grasped + grasped·min(height / 0.12, 1) (lift) + 1·success (hold);
    success = both fingers touch the cube and its bottom face is ≥ 8 cm above the table. The episode
    terminates only if the cube falls off the table.
    """

    layout = PICK_LIFT_LAYOUT
    with_cube = True

    def _obs(self) -> np.ndarray:
        s = self._state
        assert s is not None and s.cube_pos is not None
        return np.concatenate([
            s.ee_pos, s.ee_vel, [s.finger_opening], s.cube_pos, s.cube_pos - s.ee_pos, s.cube_quat,
            s.cube_vel, self.goal, self.goal - s.cube_pos,
        ]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._reset_arm()
        xy = self.np_random.uniform(CUBE_LOW, CUBE_HIGH)
        yaw = float(self.np_random.uniform(-CUBE_YAW, CUBE_YAW))
        self.scene.reset_cube(np.array([xy[0], xy[1], CUBE_HALF]), yaw)
        self.goal = np.array([xy[0], xy[1], CUBE_HALF + LIFT_GOAL])
        self._state = self.scene.read()
        return self._obs(), {"is_success": False}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        s = self._apply(action)
        assert s.cube_pos is not None
        grasped = all(s.fingers_touching)
        height = float(s.cube_pos[2] - CUBE_HALF)  # bottom face above the table (flat cube)
        success = grasped and height >= LIFT_SUCCESS
        terms = {
            "reach": -float(np.linalg.norm(s.cube_pos - s.ee_pos)),
            "grasp": GRASP_BONUS if grasped else 0.0,
            "lift": float(np.clip(height / LIFT_GOAL, 0.0, 1.0)) if grasped else 0.0,
            "hold": HOLD_BONUS if success else 0.0,
        }
        fell = bool(s.cube_pos[2] < -0.05)
        info = {"is_success": success, "grasped": grasped, "cube_height": height, "reward_terms": terms}
        return self._obs(), float(sum(terms.values())), fell, False, info


# ------------------------------------------------------------------ scripted controllers
_REACH = layout_slices(REACH_LAYOUT)
_PICK = layout_slices(PICK_LIFT_LAYOUT)


def _towards(target: np.ndarray, ee: np.ndarray) -> np.ndarray:
    """Proportional move: full speed when ≥ MAX_DELTA away, slowing down inside."""
    return np.clip((target - ee) / MAX_DELTA, -1.0, 1.0)


def scripted_reach(obs: np.ndarray) -> np.ndarray:
    """Move straight to the goal with the gripper open."""
    ee, goal = obs[_REACH["ee_pos"]], obs[_REACH["goal_pos"]]
    return np.append(_towards(goal, ee), -1.0).astype(np.float32)


class ScriptedPickLift:
    """Move above the cube, descend, close, lift to the goal; start again if the cube slips out."""

    HOVER = 0.08  # m above the cube centre before descending
    GRASP_DZ = -0.005  # m, grasp point relative to the cube centre
    CLOSE_STEPS = 5

    def __init__(self) -> None:
        self.phase = "approach"
        self._closing = 0

    def reset(self) -> None:
        self.phase, self._closing = "approach", 0

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        ee, cube, goal = obs[_PICK["ee_pos"]], obs[_PICK["cube_pos"]], obs[_PICK["goal_pos"]]
        hover = cube + np.array([0.0, 0.0, self.HOVER])
        grasp = cube + np.array([0.0, 0.0, self.GRASP_DZ])
        if self.phase == "lift" and np.linalg.norm(cube - ee) > 0.03:
            self.reset()  # dropped it
        if self.phase == "approach":
            target, grip = hover, -1.0
            if np.linalg.norm(hover - ee) < 0.01:
                self.phase = "descend"
        if self.phase == "descend":
            target, grip = grasp, -1.0
            if np.linalg.norm(grasp - ee) < 0.01:
                self.phase = "close"
        if self.phase == "close":
            target, grip = grasp, 1.0
            self._closing += 1
            if self._closing > self.CLOSE_STEPS:
                self.phase = "lift"
        if self.phase == "lift":
            target, grip = goal, 1.0
        return np.append(_towards(target, ee), grip).astype(np.float32)


# ------------------------------------------------------------------ registration
REACH_ID = "robots/PandaReachBullet-v0"
PICK_LIFT_ID = "robots/PandaPickLiftBullet-v0"
REACH_STEPS = 50
PICK_LIFT_STEPS = 100

gymnasium.register(id=REACH_ID, entry_point="robots.bullet_gripper:PandaReachEnv",
                   max_episode_steps=REACH_STEPS)
gymnasium.register(id=PICK_LIFT_ID, entry_point="robots.bullet_gripper:PandaPickLiftEnv",
                   max_episode_steps=PICK_LIFT_STEPS)

register_task(TaskSpec(
    name="panda-reach-bullet",
    gym_id=REACH_ID,
    simulator="pybullet",
    family="gripper",
    obs_dim=sum(f.size for f in REACH_LAYOUT),
    act_dim=4,
    control_hz=CONTROL_HZ,
    obs_layout=REACH_LAYOUT,
    preset="panda_reach_bullet.yaml",
    description=(f"Franka Panda (PyBullet) reaches a random point; action = EE displacement ≤ {MAX_DELTA} m "
                 f"+ gripper; success within {REACH_SUCCESS} m; {REACH_STEPS} steps."),
))
register_task(TaskSpec(
    name="panda-pick-lift-bullet",
    gym_id=PICK_LIFT_ID,
    simulator="pybullet",
    family="gripper",
    obs_dim=sum(f.size for f in PICK_LIFT_LAYOUT),
    act_dim=4,
    control_hz=CONTROL_HZ,
    obs_layout=PICK_LIFT_LAYOUT,
    preset="panda_pick_lift_bullet.yaml",
    description=(f"Franka Panda (PyBullet) grasps a 5 cm cube and lifts it ≥ {LIFT_SUCCESS} m; action = EE "
                 f"displacement ≤ {MAX_DELTA} m + gripper (-1 open, +1 closed); {PICK_LIFT_STEPS} steps."),
))
