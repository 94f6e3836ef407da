"""A Franka Panda arm on a table, in its own PyBullet client, driven in Cartesian space.

The scene knows physics only (no rewards): it loads ``franka_panda/panda.urdf`` from ``pybullet_data``
with a fixed base at the world origin, a box table whose top is the plane z = 0, and optionally
``cube_small.urdf`` (a 5 cm, 0.1 kg cube). The end effector is the ``panda_grasptarget`` link, the point
between the fingertips; its orientation is held fixed with the fingers pointing straight down and opening
along the world y axis.

Commands are what a real arm controller accepts: a Cartesian end-effector position (turned into joint
targets by PyBullet's damped-least-squares IK with a null-space pull towards a rest pose, Buss 2004,
"Introduction to inverse kinematics with Jacobian transpose, pseudoinverse and damped least squares")
and a gripper command in [-1, 1] (-1 fully open, +1 fully closed).

Every PyBullet call passes ``physicsClientId``: instances share no state, so many scenes can live in one
process or in subprocess vector environments.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import pybullet as p
import pybullet_data

ARM_JOINTS: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
FINGER_JOINTS: tuple[int, ...] = (9, 10)
EE_LINK = 11  # panda_grasptarget: between the fingertips, 0.105 m below the hand flange
ARM_FORCES: tuple[float, ...] = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)  # N·m, from panda.urdf
FINGER_FORCE = 40.0  # N per finger; holds the 0.1 kg cube with a wide margin
FINGER_MAX = 0.04  # m, travel of one finger (opening = 2 × travel)
CUBE_HALF = 0.025  # m, half the edge of cube_small.urdf
# Joint limits of the 7 arm joints and 2 fingers (panda.urdf), for the null-space IK.
LOWER = (-2.9671, -1.8326, -2.9671, -3.1416, -2.9671, -0.0873, -2.9671, 0.0, 0.0)
UPPER = (2.9671, 1.8326, 2.9671, 0.0, 2.9671, 3.8223, 2.9671, 0.04, 0.04)
RANGES = tuple(u - l for u, l in zip(UPPER, LOWER))
# A well-conditioned pose with the hand above the table, fingers down (the IK null-space target).
REST = (0.0, -0.2, 0.0, -2.3, 0.0, 2.1, math.pi / 4, 0.04, 0.04)
DOWN_QUAT = p.getQuaternionFromEuler((math.pi, 0.0, 0.0))  # fingers point to -z, open along y


@dataclass
class PandaState:
    """One batched read of everything an observation needs (world frame, SI units)."""

    ee_pos: np.ndarray  # (3,) m
    ee_vel: np.ndarray  # (3,) m/s
    finger_opening: float  # m, distance between the finger pads' joints (0 … 0.08)
    cube_pos: np.ndarray | None = None  # (3,) m, cube centre
    cube_quat: np.ndarray | None = None  # (4,) x, y, z, w with w >= 0
    cube_vel: np.ndarray | None = None  # (3,) m/s
    fingers_touching: tuple[bool, bool] = (False, False)  # left, right finger in contact with the cube


class PandaScene:
    """The physics of one Panda + table (+ cube) world in a private ``pybullet.DIRECT`` client."""

    def __init__(
        self,
        with_cube: bool,
        time_step: float = 1.0 / 240.0,
        substeps: int = 10,
        ik_iterations: int = 10,
        solver_iterations: int = 50,
    ) -> None:
        if substeps < 1 or ik_iterations < 1 or time_step <= 0:
            raise ValueError(
                f"expected time_step > 0, substeps >= 1, ik_iterations >= 1; got {time_step}, "
                f"{substeps}, {ik_iterations}"
            )
        self.substeps = substeps
        self.ik_iterations = ik_iterations
        self.control_dt = time_step * substeps
        self.client = p.connect(p.DIRECT)
        c = self.client
        p.setGravity(0.0, 0.0, -9.81, physicsClientId=c)
        p.setTimeStep(time_step, physicsClientId=c)
        p.setPhysicsEngineParameter(numSolverIterations=solver_iterations, physicsClientId=c)
        data = pybullet_data.getDataPath()
        self.robot = p.loadURDF(
            os.path.join(data, "franka_panda", "panda.urdf"),
            basePosition=(0.0, 0.0, 0.0),
            useFixedBase=True,
            flags=p.URDF_USE_INERTIA_FROM_FILE,
            physicsClientId=c,
        )
        table_shape = p.createCollisionShape(p.GEOM_BOX, halfExtents=(0.55, 0.6, 0.2), physicsClientId=c)
        table_visual = p.createVisualShape(
            p.GEOM_BOX, halfExtents=(0.55, 0.6, 0.2), rgbaColor=(0.6, 0.5, 0.4, 1.0), physicsClientId=c
        )
        self.table = p.createMultiBody(
            0.0, table_shape, table_visual, basePosition=(0.35, 0.0, -0.2), physicsClientId=c
        )
        self._cube_urdf = os.path.join(data, "cube_small.urdf")
        self.cube: int | None = None
        if with_cube:
            self.reset_cube(np.array([0.5, 0.0, CUBE_HALF]), 0.0)
        self._all_joints = list(ARM_JOINTS + FINGER_JOINTS)
        self.forces = np.array(ARM_FORCES + (FINGER_FORCE, FINGER_FORCE))  # N·m / N limits (randomized)

    # ---------------------------------------------------------------- commands
    def reset_arm(self, ee_target: np.ndarray, iterations: int = 20) -> None:
        """Teleport the arm (at rest, fingers open) so the end effector sits at ``ee_target``."""
        c = self.client
        for j, q in zip(self._all_joints, REST):
            p.resetJointState(self.robot, j, q, 0.0, physicsClientId=c)
        for _ in range(iterations):  # IK starts from the current joints: iterate to converge exactly
            q = self._ik(ee_target, iterations=20)
            for j, qj in zip(ARM_JOINTS, q):
                p.resetJointState(self.robot, j, qj, 0.0, physicsClientId=c)
        q = [p.getJointState(self.robot, j, physicsClientId=c)[0] for j in ARM_JOINTS]
        p.setJointMotorControlArray(
            self.robot,
            self._all_joints,
            p.POSITION_CONTROL,
            targetPositions=q + [FINGER_MAX, FINGER_MAX],
            forces=self.forces.tolist(),
            physicsClientId=c,
        )

    def reset_cube(self, position: np.ndarray, yaw: float) -> None:
        """Place a fresh cube at rest at ``position`` (its centre), rotated by ``yaw`` about z.

        The cube is removed and loaded again (0.1 ms) rather than teleported: Bullet keeps the contact
        points and impulses of a body that stays put for warm starting, which would make a seeded reset
        depend on the previous episode.
        """
        c = self.client
        if self.cube is not None:
            p.removeBody(self.cube, physicsClientId=c)
        quat = p.getQuaternionFromEuler((0.0, 0.0, yaw))
        self.cube = p.loadURDF(self._cube_urdf, basePosition=list(position), baseOrientation=quat,
                               physicsClientId=c)
        p.changeVisualShape(self.cube, -1, rgbaColor=(0.9, 0.2, 0.2, 1.0), physicsClientId=c)

    def _ik(self, ee_target: np.ndarray, iterations: int) -> list[float]:
        q = p.calculateInverseKinematics(
            self.robot,
            EE_LINK,
            list(ee_target),
            DOWN_QUAT,
            lowerLimits=LOWER,
            upperLimits=UPPER,
            jointRanges=RANGES,
            restPoses=REST,
            maxNumIterations=iterations,
            residualThreshold=1e-4,
            physicsClientId=self.client,
        )
        return list(q[: len(ARM_JOINTS)])

    def command(self, ee_target: np.ndarray, gripper: float) -> None:
        """Set joint position targets for an end-effector position and a gripper command in [-1, 1]."""
        finger = FINGER_MAX * 0.5 * (1.0 - float(np.clip(gripper, -1.0, 1.0)))
        p.setJointMotorControlArray(
            self.robot,
            self._all_joints,
            p.POSITION_CONTROL,
            targetPositions=self._ik(ee_target, self.ik_iterations) + [finger, finger],
            forces=self.forces.tolist(),
            physicsClientId=self.client,
        )

    def simulate(self) -> None:
        """Advance one control period (``substeps`` physics steps)."""
        for _ in range(self.substeps):
            p.stepSimulation(physicsClientId=self.client)

    # ---------------------------------------------------------------- sensing
    def read(self) -> PandaState:
        """Read the arm (and cube) state with as few queries as possible."""
        c = self.client
        link = p.getLinkState(self.robot, EE_LINK, computeLinkVelocity=1, computeForwardKinematics=1,
                              physicsClientId=c)
        fingers = p.getJointStates(self.robot, list(FINGER_JOINTS), physicsClientId=c)
        state = PandaState(
            ee_pos=np.asarray(link[4], dtype=np.float64),
            ee_vel=np.asarray(link[6], dtype=np.float64),
            finger_opening=float(fingers[0][0] + fingers[1][0]),
        )
        if self.cube is not None:
            pos, quat = p.getBasePositionAndOrientation(self.cube, physicsClientId=c)
            quat_arr = np.asarray(quat, dtype=np.float64)
            state.cube_pos = np.asarray(pos, dtype=np.float64)
            state.cube_quat = -quat_arr if quat_arr[3] < 0 else quat_arr  # q and -q are one rotation
            state.cube_vel = np.asarray(p.getBaseVelocity(self.cube, physicsClientId=c)[0], dtype=np.float64)
            links = {pt[3] for pt in p.getContactPoints(self.robot, self.cube, physicsClientId=c)}
            state.fingers_touching = (FINGER_JOINTS[0] in links, FINGER_JOINTS[1] in links)
        return state

    def render(self, width: int, height: int) -> np.ndarray:
        """An RGB image (height × width × 3, uint8) from a fixed camera, by the CPU tiny renderer."""
        c = self.client
        view = p.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=(0.3, 0.0, 0.25), distance=1.3, yaw=50.0, pitch=-25.0, roll=0.0,
            upAxisIndex=2, physicsClientId=c,
        )
        proj = p.computeProjectionMatrixFOV(fov=50.0, aspect=width / height, nearVal=0.05, farVal=4.0,
                                            physicsClientId=c)
        _, _, rgba, _, _ = p.getCameraImage(width, height, view, proj, renderer=p.ER_TINY_RENDERER,
                                            physicsClientId=c)
        return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3].copy()

    def close(self) -> None:
        """Disconnect the client (safe to call twice)."""
        if self.client >= 0:
            p.disconnect(physicsClientId=self.client)
            self.client = -1
