"""The twin hopper: one robot file (``robots/assets/hopper_twin.xml``), one observation and action contract,
two simulators — so one ONNX file runs in either.

* ``hopper-twin`` (``robots/HopperTwin-v0``): gymnasium's own ``HopperEnv`` (v5) on the twin file.
* ``hopper-twin-bullet`` (``robots/HopperTwinBullet-v0``): :class:`HopperTwinBulletEnv`, the same file loaded
  by PyBullet's ``loadMJCF``, with Hopper-v5's observation (qpos without x, qvel clipped to ±10, float64),
  action (3 motors, ctrl in [-1, 1] × gear 200 N·m), reward (forward velocity + 1 while healthy −
  10⁻³·|a|²), health rules (z > 0.7 m, |pitch| < 0.2 rad, |state| < 100), reset noise (U(±0.005) on qpos
  then qvel, from the env's generator) and timing (4 × 2 ms per control step, 125 Hz).

How the twins differ (docs/tasks/hopper_twin.md): MuJoCo integrates with RK4 and soft contacts
(solref 0.02, solimp 0.8/0.8/0.01, friction = the larger of the two geoms'), joint limits as soft
constraints and damping inside the integrator; PyBullet integrates semi-implicit Euler with a
sequential-impulse solver (hard contacts, friction = product of the two), hard joint limits, and the
damping torque −d·q̇ is applied here explicitly at each 2 ms substep.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import gymnasium
import numpy as np
import pybullet as p

from robots.gymnasium_tasks import hopper_layout
from robots.physics import BulletPhysics
from robots.registry import TaskSpec, register_task

TWIN_XML = Path(__file__).parent / "assets" / "hopper_twin.xml"
TIMESTEP = 0.002  # s, the XML's option timestep
FRAME_SKIP = 4  # Hopper-v5's default: 125 Hz control
GEAR = 200.0  # N·m at ctrl 1, the XML's motors
DAMPING = 1.0  # N·m·s/rad on the three leg joints (the XML's joint default)
ROOTZ_REF = 1.25  # the XML's rootz ref: MuJoCo's qpos[1] is the torso height, Bullet's joint starts at 0
RESET_NOISE = 5e-3
HEALTHY_Z, HEALTHY_ANGLE, HEALTHY_STATE = 0.7, 0.2, 100.0
CTRL_COST = 1e-3
MAX_EPISODE_STEPS = 1000
_ROOTS = ("rootx", "rootz", "rooty")
_LEGS = ("thigh_joint", "leg_joint", "foot_joint")


def body_inertias() -> dict[str, list[float]]:
    """Each body's principal inertia (kg·m², body axes) as the twin file states it."""
    out = {}
    for body in ElementTree.parse(TWIN_XML).iter("body"):
        inertial = body.find("inertial")
        if inertial is not None:
            out[body.get("name")] = [float(x) for x in inertial.get("diaginertia").split()]
    return out


class HopperTwinBulletEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """Hopper-v5's contract on PyBullet (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 125}

    def __init__(self, render_mode: str | None = None, width: int = 320, height: int = 240,
                 solver_iterations: int = 50) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode, self._size = render_mode, (int(width), int(height))
        self._client: int | None = p.connect(p.DIRECT)
        cid = self._client
        try:
            p.setGravity(0.0, 0.0, -9.81, physicsClientId=cid)
            p.setPhysicsEngineParameter(fixedTimeStep=TIMESTEP, numSubSteps=0,
                                        numSolverIterations=solver_iterations,
                                        deterministicOverlappingPairs=1, physicsClientId=cid)
            self._floor, self._robot = p.loadMJCF(str(TWIN_XML), physicsClientId=cid)
            p.changeDynamics(self._floor, -1, lateralFriction=1.0, physicsClientId=cid)  # MuJoCo's default
            links = {p.getJointInfo(self._robot, j, physicsClientId=cid)[12].decode(): j
                     for j in range(p.getNumJoints(self._robot, physicsClientId=cid))}
            for body, inertia in body_inertias().items():  # Bullet's capsule inertia is its bounding box's
                p.changeDynamics(self._robot, links[body], localInertiaDiagonal=inertia, physicsClientId=cid)
            names = {p.getJointInfo(self._robot, j, physicsClientId=cid)[1].decode(): j
                     for j in range(p.getNumJoints(self._robot, physicsClientId=cid))}
            self._roots = [names[n] for n in _ROOTS]
            self._legs = [names[n] for n in _LEGS]
            every = list(range(p.getNumJoints(self._robot, physicsClientId=cid)))
            # MJCF joints come with velocity motors: off, so only our torques act
            p.setJointMotorControlArray(self._robot, every, p.VELOCITY_CONTROL, forces=[0.0] * len(every),
                                        physicsClientId=cid)
        except Exception:
            self.close()
            raise
        self._read = self._roots + self._legs
        self.strength = np.full(3, GEAR)  # N·m at ctrl ±1, per motor (scaled by randomization)
        self.damping = np.full(3, DAMPING)
        self._physics: BulletPhysics | None = None
        self.init_qpos = np.array([0.0, ROOTZ_REF, 0.0, 0.0, 0.0, 0.0])
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (11,), np.float64)
        self.dt = TIMESTEP * FRAME_SKIP
        self._started = False

    # ----------------------------------------------------------------- state in MuJoCo's coordinates
    def state(self) -> tuple[np.ndarray, np.ndarray]:
        """(qpos, qvel) as Hopper-v5 defines them: rootx, rootz (height), rooty, thigh, leg, foot."""
        states = p.getJointStates(self._robot, self._read, physicsClientId=self._client)
        qpos = np.array([s[0] for s in states])
        qpos[1] += ROOTZ_REF
        return qpos, np.array([s[1] for s in states])

    def _set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        for j, (q, v) in enumerate(zip(qpos, qvel)):
            offset = ROOTZ_REF if j == 1 else 0.0
            p.resetJointState(self._robot, self._read[j], float(q - offset), float(v), physicsClientId=self._client)

    def _obs(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        return np.concatenate([qpos[1:], np.clip(qvel, -10.0, 10.0)])

    @staticmethod
    def _healthy(qpos: np.ndarray, qvel: np.ndarray) -> bool:
        state = np.concatenate([qpos[2:], qvel])
        return bool(np.all(np.abs(state) < HEALTHY_STATE) and qpos[1] > HEALTHY_Z
                    and abs(qpos[2]) < HEALTHY_ANGLE)

    # ----------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if self._client is None:
            raise RuntimeError("reset() on a closed env")
        qpos = self.init_qpos + self.np_random.uniform(-RESET_NOISE, RESET_NOISE, 6)
        qvel = self.np_random.uniform(-RESET_NOISE, RESET_NOISE, 6)
        self._set_state(qpos, qvel)
        self._started = True
        qpos, qvel = self.state()
        return self._obs(qpos, qvel), {"x_position": qpos[0], "z_distance_from_origin": qpos[1] - ROOTZ_REF}

    def step(self, action: np.ndarray):
        if self._client is None:
            raise RuntimeError("step() on a closed env")
        if not self._started:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(action, np.float64)
        if a.shape != (3,) or not np.isfinite(a).all():
            raise ValueError(f"action must be 3 finite numbers, got {a}")
        x_before = self.state()[0][0]
        ctrl = np.clip(a, -1.0, 1.0)
        cid = self._client
        for _ in range(FRAME_SKIP):
            qd = np.array([s[1] for s in p.getJointStates(self._robot, self._legs, physicsClientId=cid)])
            torque = self.strength * ctrl - self.damping * qd
            p.setJointMotorControlArray(self._robot, self._legs, p.TORQUE_CONTROL, forces=torque.tolist(),
                                        physicsClientId=cid)
            p.stepSimulation(physicsClientId=cid)
        qpos, qvel = self.state()
        velocity = (qpos[0] - x_before) / self.dt
        healthy = self._healthy(qpos, qvel)
        ctrl_cost = CTRL_COST * float(np.sum(np.square(a)))
        survive = 1.0 if healthy else 0.0
        info = {"x_position": qpos[0], "z_distance_from_origin": qpos[1] - ROOTZ_REF, "x_velocity": velocity,
                "reward_forward": velocity, "reward_ctrl": -ctrl_cost, "reward_survive": survive}
        return self._obs(qpos, qvel), velocity + survive - ctrl_cost, not healthy, False, info

    def physics(self) -> BulletPhysics:
        """Randomization: link masses, contact friction, damping and motor strength (this env's own)."""
        if self._physics is None:
            self._physics = BulletPhysics(self._client, lambda: [self._floor, self._robot], strength=self.strength,
                                          damping=self.damping, push=self._push)
        return self._physics

    def _push(self, dv: np.ndarray) -> None:
        q, v = p.getJointState(self._robot, self._roots[0], physicsClientId=self._client)[:2]
        p.resetJointState(self._robot, self._roots[0], q, v + float(dv[0]), physicsClientId=self._client)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self._client is None:
            return None
        width, height = self._size
        x = float(self.state()[0][0])
        view = p.computeViewMatrixFromYawPitchRoll(cameraTargetPosition=(x, 0.0, 1.0), distance=3.0, yaw=0.0,
                                                   pitch=-10.0, roll=0.0, upAxisIndex=2, physicsClientId=self._client)
        proj = p.computeProjectionMatrixFOV(fov=60.0, aspect=width / height, nearVal=0.05, farVal=50.0,
                                            physicsClientId=self._client)
        rgba = p.getCameraImage(width, height, view, proj, renderer=p.ER_TINY_RENDERER,
                                physicsClientId=self._client)[2]
        return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3].copy()

    def close(self) -> None:
        if self._client is not None:
            if p.isConnected(physicsClientId=self._client):
                p.disconnect(physicsClientId=self._client)
            self._client = None


MUJOCO_ID, BULLET_ID = "robots/HopperTwin-v0", "robots/HopperTwinBullet-v0"
if MUJOCO_ID not in gymnasium.registry:
    gymnasium.register(id=MUJOCO_ID, entry_point="gymnasium.envs.mujoco.hopper_v5:HopperEnv",
                       max_episode_steps=MAX_EPISODE_STEPS, kwargs={"xml_file": os.fspath(TWIN_XML)})
if BULLET_ID not in gymnasium.registry:
    gymnasium.register(id=BULLET_ID, entry_point="robots.hopper_twin:HopperTwinBulletEnv",
                       max_episode_steps=MAX_EPISODE_STEPS)

_ABOUT = ("Twin hopper (Hopper-v5's robot without rotor armature, which PyBullet lacks); same observation, "
          "action and reward as Hopper-v5; {}")
register_task(TaskSpec(
    name="hopper-twin", gym_id=MUJOCO_ID, simulator="mujoco", family="locomotion", obs_dim=11, act_dim=3,
    control_hz=round(1.0 / (TIMESTEP * FRAME_SKIP), 6), obs_layout=hopper_layout(), preset="hopper_twin.yaml",
    description=_ABOUT.format("MuJoCo side (gymnasium's HopperEnv)."), twin="hopper-twin-bullet",
))
register_task(TaskSpec(
    name="hopper-twin-bullet", gym_id=BULLET_ID, simulator="pybullet", family="locomotion", obs_dim=11,
    act_dim=3, control_hz=round(1.0 / (TIMESTEP * FRAME_SKIP), 6), obs_layout=hopper_layout(),
    preset="hopper_twin.yaml", description=_ABOUT.format("PyBullet side (loadMJCF of the same file)."),
    twin="hopper-twin",
))
