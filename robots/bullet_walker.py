"""A gymnasium-native PyBullet walker: one MJCF robot on a plane, torque control, forward-progress reward.

The reward follows the shaping of PyBullet's own locomotion envs (``pybullet_envs/gym_locomotion_envs.py``,
itself after OpenAI Roboschool, Klimov & Schulman 2017), per control step:

    r = progress + alive − electricity − joints_at_limit
    progress        = torso forward velocity along +x (m/s), from the displacement over one step
    alive           = +1 while healthy, −1 on the step the robot falls
    electricity     = 0.2 · mean_j |a_j · q̇_j| + 0.1 · mean_j a_j²     (q̇ in rad/s, a in [-1, 1])
    joints_at_limit = 0.1 · #{j : |normalized q_j| > 0.99}

Each instance owns one ``pybullet.DIRECT`` client and passes ``physicsClientId`` on every call, so
several envs live in one process and subprocess vector envs rebuild them by gym id.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
import pybullet as p
import pybullet_data

from robots.physics import BulletPhysics

SUBSTEPS = 4
CONTROL_DT = 1.0 / 60.0  # s per env step; physics runs SUBSTEPS × 1/240 s inside one stepSimulation
SOLVER_ITERATIONS = 5  # as pybullet_envs' locomotion scenes
ELECTRICITY_COST = 0.2  # pybullet_envs: 2.0 × |a · 0.1 q̇|
STALL_TORQUE_COST = 0.1
JOINT_AT_LIMIT_COST = 0.1
AT_LIMIT = 0.99
OBS_LIMIT = 100.0  # every observation element is clipped to ±OBS_LIMIT (far beyond physical values)


@dataclass(frozen=True)
class WalkerModel:
    """What differs between robots: the MJCF file, actuated joints, motor strength and fall rules."""

    xml: str  # file in pybullet_data/mjcf
    joints: tuple[str, ...]  # actuated joints, in action order
    torques: tuple[float, ...]  # N·m applied at action ±1, per joint
    feet: tuple[str, ...]  # links whose ground contact is observed
    planar: bool  # True: torso moves on slide x / slide z / hinge y joints (ignore*)
    min_height: float | None = None  # torso z (m) at or below this is a fall
    max_pitch: float | None = None  # |torso pitch| (rad) at or above this is a fall
    bad_contacts: tuple[str, ...] = ()  # links whose ground contact is a fall
    terminate_on_fall: bool = True  # False: a fall only turns the alive bonus to −1
    camera_distance: float = 2.5

    def __post_init__(self) -> None:
        if len(self.joints) != len(self.torques):
            raise ValueError(f"{self.xml}: {len(self.joints)} joints but {len(self.torques)} torques")


class BulletWalkerEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """Base class; a subclass sets ``model``. Observation layout: see :meth:`_observe`."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 60}
    model: WalkerModel

    def __init__(self, render_mode: str | None = None, width: int = 320, height: int = 240) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if width < 1 or height < 1:
            raise ValueError(f"render size must be positive, got {width}x{height}")
        self.render_mode = render_mode
        self._width, self._height = int(width), int(height)
        self._client: int | None = p.connect(p.DIRECT)
        cid = self._client
        p.setGravity(0.0, 0.0, -9.8, physicsClientId=cid)
        p.setPhysicsEngineParameter(
            fixedTimeStep=CONTROL_DT,
            numSubSteps=SUBSTEPS,
            numSolverIterations=SOLVER_ITERATIONS,
            deterministicOverlappingPairs=1,
            physicsClientId=cid,
        )
        data = pybullet_data.getDataPath()
        try:
            self._plane = p.loadURDF(os.path.join(data, "plane.urdf"), physicsClientId=cid)
            p.changeDynamics(self._plane, -1, lateralFriction=0.8, restitution=0.5, physicsClientId=cid)
            flags = p.URDF_USE_SELF_COLLISION | p.URDF_USE_SELF_COLLISION_EXCLUDE_ALL_PARENTS
            flags |= p.URDF_GOOGLEY_UNDEFINED_COLORS  # coloured links in rendered frames
            xml = os.path.join(data, "mjcf", self.model.xml)
            self._robot = p.loadMJCF(xml, flags=flags, physicsClientId=cid)[0]
            self._index_model()
        except Exception:
            self.close()  # do not leak the physics client of a half-built env
            raise
        n = len(self.model.joints)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (n,), np.float32)
        obs_dim = (5 if self.model.planar else 11) + 2 * n + len(self.model.feet)
        self.observation_space = gymnasium.spaces.Box(-OBS_LIMIT, OBS_LIMIT, (obs_dim,), np.float32)
        self._state_id = p.saveState(physicsClientId=cid)
        self._x: float | None = None  # torso x after the last step; None until the first reset
        self._physics: BulletPhysics | None = None
        self._contacts: set[int] = set()

    @property
    def physics_client(self) -> int:
        """This env's PyBullet client id (for debugging, extra objects or tests); closed envs raise."""
        if self._client is None:
            raise RuntimeError("the env is closed")
        return self._client

    @property
    def robot_id(self) -> int:
        """The robot's body id inside :attr:`physics_client`."""
        return self._robot

    def physics(self) -> BulletPhysics:
        """Randomization: link masses, friction (robot and floor), motor torques; pushes move the torso."""
        if self._physics is None:
            self._physics = BulletPhysics(self._client, lambda: [self._robot, self._plane], strength=self._torques,
                                          push=self._push)
        return self._physics

    def _push(self, dv: np.ndarray) -> None:
        cid, robot = self._client, self._robot
        if self.model.planar:  # the root slide along x carries the torso's forward motion
            q, v = p.getJointState(robot, self._root_x, physicsClientId=cid)[:2]
            p.resetJointState(robot, self._root_x, q, v + float(dv[0]), physicsClientId=cid)
            return
        lin, ang = p.getBaseVelocity(robot, physicsClientId=cid)
        p.resetBaseVelocity(robot, [lin[0] + float(dv[0]), lin[1] + float(dv[1]), lin[2]], ang, physicsClientId=cid)

    # ----------------------------------------------------------------- construction helpers
    def _index_model(self) -> None:
        """Cache joint / link indices, limits and torques (no name look-ups while stepping)."""
        cid, robot = self._client, self._robot
        joint_index: dict[str, int] = {}
        link_index: dict[str, int] = {"torso": -1}  # the ant's torso is the base
        for j in range(p.getNumJoints(robot, physicsClientId=cid)):
            info = p.getJointInfo(robot, j, physicsClientId=cid)
            joint_index[info[1].decode()] = j
            link_index[info[12].decode()] = j
        missing = [name for name in self.model.joints if name not in joint_index]
        if missing:
            raise ValueError(f"{self.model.xml} has no joints {missing}; it has {sorted(joint_index)}")
        missing = [name for name in self.model.feet + self.model.bad_contacts if name not in link_index]
        if missing:
            raise ValueError(f"{self.model.xml} has no links {missing}; it has {sorted(link_index)}")
        self._all_joints = list(range(p.getNumJoints(robot, physicsClientId=cid)))
        self._joints = [joint_index[name] for name in self.model.joints]
        infos = [p.getJointInfo(robot, j, physicsClientId=cid) for j in self._joints]
        self._lower = np.array([i[8] for i in infos])
        self._upper = np.array([i[9] for i in infos])
        self._mid = 0.5 * (self._lower + self._upper)
        self._half_range = 0.5 * (self._upper - self._lower)
        self._home = np.clip(0.0, self._lower, self._upper)  # the model's zero pose, moved into the limits
        self._torques = np.array(self.model.torques)
        self._torso = link_index["torso"]
        if self.model.planar:  # the three root joints carry x, z and pitch
            roots = [j for name, j in joint_index.items() if name.startswith("ignore")]
            self._root_x = next(j for j in roots if p.getJointInfo(robot, j, physicsClientId=cid)[2] == p.JOINT_PRISMATIC
                                and abs(p.getJointInfo(robot, j, physicsClientId=cid)[13][0]) > 0.5)
            self._read = sorted(roots) + self._joints
            if len(self._read) != 3 + len(self._joints):
                raise ValueError(f"{self.model.xml}: a planar robot needs 3 'ignore*' root joints")
        else:
            self._read = self._joints
        self._feet = [link_index[name] for name in self.model.feet]
        self._bad = [link_index[name] for name in self.model.bad_contacts]
        self._z0 = self._torso_pose()[0][2]  # nominal standing height of the torso

    # ----------------------------------------------------------------- state reading
    def _torso_pose(self) -> tuple[tuple[float, ...], ...]:
        """World position, orientation quaternion, linear and angular velocity of the torso."""
        cid, robot = self._client, self._robot
        if self._torso < 0:
            pos, orn = p.getBasePositionAndOrientation(robot, physicsClientId=cid)
            lin, ang = p.getBaseVelocity(robot, physicsClientId=cid)
            return pos, orn, lin, ang
        state = p.getLinkState(robot, self._torso, computeLinkVelocity=1, physicsClientId=cid)
        return state[0], state[1], state[6], state[7]

    def _observe(self) -> np.ndarray:
        """Read the simulator once and build the observation (layouts in ``robots/bullet_locomotion.py``).

        Planar: [z − z0, vx, vz, pitch, pitch rate, q normalized to limits (n), q̇ (n), foot contacts].
        Spatial: [z − z0, sin/cos of heading error to +x, velocity (3) and angular velocity (3) in the
        yaw-aligned frame, roll, pitch, q normalized (n), q̇ (n), foot contacts].
        """
        cid, robot = self._client, self._robot
        states = p.getJointStates(robot, self._read, physicsClientId=cid)
        pos, orn, lin, ang = self._torso_pose()
        q = [s[0] for s in states]
        qd = [s[1] for s in states]
        contacts = p.getContactPoints(bodyA=robot, bodyB=self._plane, physicsClientId=cid)
        self._contacts = {c[3] for c in contacts}
        feet = [1.0 if link in self._contacts else 0.0 for link in self._feet]
        if self.model.planar:
            pitch = q[2]
            base = [pos[2] - self._z0, lin[0], lin[2], pitch, qd[2]]
            q, qd = q[3:], qd[3:]
        else:
            roll, pitch, yaw = p.getEulerFromQuaternion(orn, physicsClientId=cid)
            c, s = math.cos(yaw), math.sin(yaw)
            base = [
                pos[2] - self._z0, -s, c,  # heading error −yaw: sin(−yaw), cos(−yaw)
                c * lin[0] + s * lin[1], -s * lin[0] + c * lin[1], lin[2],
                c * ang[0] + s * ang[1], -s * ang[0] + c * ang[1], ang[2],
                roll, pitch,
            ]
        self._pitch = pitch
        self._torso_z = pos[2]
        self._x_new = pos[0]
        self._qn = (np.array(q) - self._mid) / self._half_range
        self._qd = np.array(qd)
        obs = np.array(base + self._qn.tolist() + qd + feet, dtype=np.float32)
        self._finite = math.isfinite(obs.sum())
        if not self._finite:  # a blown-up simulation: keep the observation in its space, step() terminates
            obs = np.nan_to_num(obs, nan=0.0, posinf=OBS_LIMIT, neginf=-OBS_LIMIT)
        np.minimum(obs, OBS_LIMIT, out=obs)
        return np.maximum(obs, -OBS_LIMIT, out=obs)

    def _healthy(self) -> bool:
        """The robot's fall rules (height, pitch, forbidden ground contacts)."""
        m = self.model
        if m.min_height is not None and self._torso_z <= m.min_height:
            return False
        if m.max_pitch is not None and abs(self._pitch) >= m.max_pitch:
            return False
        return not any(link in self._contacts for link in self._bad)

    # ----------------------------------------------------------------- gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Restore the loaded state, then jitter each actuated joint by U(−0.1, 0.1) rad (within limits)."""
        super().reset(seed=seed)
        cid, robot = self._client, self._robot
        if cid is None:
            raise RuntimeError("reset() on a closed env")
        p.restoreState(self._state_id, physicsClientId=cid)
        noise = self.np_random.uniform(-0.1, 0.1, len(self._joints))
        q = np.clip(self._home + noise, self._lower, self._upper)
        for j, qj in zip(self._joints, q):
            p.resetJointState(robot, j, float(qj), 0.0, physicsClientId=cid)
        # MJCF joints come with velocity motors; switch them off so only our torques act.
        zeros = [0.0] * len(self._all_joints)
        p.setJointMotorControlArray(
            robot, self._all_joints, p.VELOCITY_CONTROL, forces=zeros, physicsClientId=cid
        )
        p.performCollisionDetection(physicsClientId=cid)  # contacts of this pose, not of the last episode
        obs = self._observe()
        self._x = self._x_new
        return obs, {"x_position": self._x}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply torques for 1/60 s; reward terms as in the module docstring, each also in ``info``."""
        cid = self._client
        if cid is None:
            raise RuntimeError("step() on a closed env")
        if self._x is None:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"action must be finite, got {a}")
        a = np.minimum(np.maximum(a, -1.0), 1.0)
        forces = (self._torques * a).tolist()
        p.setJointMotorControlArray(
            self._robot, self._joints, p.TORQUE_CONTROL, forces=forces, physicsClientId=cid
        )
        p.stepSimulation(physicsClientId=cid)
        obs = self._observe()

        velocity = (self._x_new - self._x) / CONTROL_DT
        self._x = self._x_new
        healthy = self._healthy()
        n = len(a)
        electricity = ELECTRICITY_COST * float(np.abs(a * self._qd).sum()) / n
        electricity += STALL_TORQUE_COST * float(a @ a) / n
        at_limit = float(np.count_nonzero(np.abs(self._qn) > AT_LIMIT))
        parts = {
            "reward_progress": velocity,
            "reward_alive": 1.0 if healthy else -1.0,
            "reward_electricity": -electricity,
            "reward_joints_at_limit": -JOINT_AT_LIMIT_COST * at_limit,
        }
        terminated = (self.model.terminate_on_fall and not healthy) or not self._finite
        info = dict(parts, x_position=self._x, x_velocity=velocity)
        reward = float(sum(parts.values())) if self._finite else 0.0
        return obs, reward, terminated, False, info

    def render(self) -> np.ndarray | None:
        """An HxWx3 uint8 frame from a camera beside the torso (ER_TINY_RENDERER, no GL needed)."""
        if self.render_mode != "rgb_array":
            return None
        cid = self._client
        if cid is None:
            raise RuntimeError("render() on a closed env")
        target = list(self._torso_pose()[0])
        target[2] = max(target[2], 0.5)
        view = p.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=target, distance=self.model.camera_distance, yaw=0.0, pitch=-15.0, roll=0.0,
            upAxisIndex=2, physicsClientId=cid,
        )
        proj = p.computeProjectionMatrixFOV(
            fov=60.0, aspect=self._width / self._height, nearVal=0.05, farVal=50.0, physicsClientId=cid
        )
        _, _, rgba, _, _ = p.getCameraImage(
            self._width, self._height, view, proj, renderer=p.ER_TINY_RENDERER, physicsClientId=cid
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(self._height, self._width, 4)[:, :, :3].copy()

    def close(self) -> None:
        """Disconnect this env's physics client (safe to call twice)."""
        if self._client is not None:
            if p.isConnected(physicsClientId=self._client):
                p.disconnect(physicsClientId=self._client)
            self._client = None
