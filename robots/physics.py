"""The per-simulator physics interface that randomization drives: scale masses, friction, damping,
actuator strength and contact softness, move the base's centre of mass, push a body — and put everything
back exactly.

:class:`MujocoPhysics` writes ``mjModel`` fields (and recomputes the derived constants with
``mj_setConst`` on a scratch ``mjData``, as MuJoCo's docs ask after editing masses); :meth:`restore`
copies the saved nominal arrays back, bit for bit. :class:`BulletPhysics` uses ``changeDynamics`` and the
motor strengths a task applies itself. A task class offers its interface with a ``physics()`` method;
gymnasium's own MuJoCo robots get the generic one from :func:`physics_of`.

Every ``apply`` starts from nominal: the values given are factors on the nominal model, never on the
previous episode's. ``mass_scale`` and ``actuator_scale`` are one factor for the whole model (what the
robustness sweep varies); ``per_link_mass_scale`` / ``per_actuator_scale`` multiply each body / actuator
on top of it.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Protocol

import numpy as np

Factors = dict[str, Any]  # axis → float, or a per-item array for the per_* axes (per body, per actuator)


class PhysicsInterface(Protocol):
    """What :mod:`robots.wrappers` needs from a task's simulator."""

    def axes(self) -> tuple[str, ...]:
        """The physics axes this task can randomize (an axis with nothing to scale is not offered)."""
        ...

    def sizes(self) -> dict[str, int]:
        """How many items a per-item axis (``per_link_mass_scale``, ``per_actuator_scale``) draws for."""
        ...

    def apply(self, factors: Factors) -> None:
        """Restore nominal, then apply ``factors`` (missing axes stay nominal)."""
        ...

    def restore(self) -> None:
        """Every field back to its nominal value."""
        ...

    def can_push(self) -> bool:
        ...

    def push(self, dv: np.ndarray) -> None:
        """Add the horizontal velocity change ``dv`` (m/s, x and y) to the pushed body."""
        ...


def physics_of(env: Any) -> PhysicsInterface | None:
    """The physics interface of a (wrapped) env: its own ``physics()``, the generic MuJoCo one for
    gymnasium's MuJoCo robots, or None (no physics randomization, e.g. classic control)."""
    base = getattr(env, "unwrapped", env)
    own = getattr(base, "physics", None)
    if callable(own):
        return own()
    try:
        import mujoco
    except ImportError:  # pragma: no cover - mujoco is a dependency
        return None
    if isinstance(getattr(base, "model", None), mujoco.MjModel):
        return MujocoPhysics(base.model, base.data)
    return None


def _combined(factors: Factors, whole: str, each: str, n: int) -> np.ndarray | None:
    """The factor of each of ``n`` items: the whole-model factor × the item's own (None: neither is set)."""
    if whole not in factors and each not in factors:
        return None
    s = np.full(n, float(factors.get(whole, 1.0)))
    if each in factors:
        s = s * np.broadcast_to(np.asarray(factors[each], float), (n,))
    return s


# ---------------------------------------------------------------------------------------------- MuJoCo
_MJ_FIELDS = ("body_mass", "body_inertia", "body_ipos", "geom_friction", "dof_damping", "actuator_gear",
              "actuator_forcerange", "geom_solref", "jnt_solref", "pair_solref")
# what mj_setConst recomputes from the fields above (restored from the saved copy, not recomputed)
_MJ_DERIVED = ("body_subtreemass", "body_invweight0", "dof_invweight0", "tendon_invweight0",
               "actuator_acc0", "actuator_length0", "dof_M0")


class MujocoPhysics:
    """Randomization on an ``mjModel``. ``base``: the body whose centre of mass moves (default: the first
    body with joints); ``push_body``: the body pushed (default: ``base``, if its joints allow it)."""

    def __init__(self, model: Any, data: Any, base: str | None = None, push_body: str | None = None) -> None:
        import mujoco

        self._mj, self.model, self.data = mujoco, model, data
        self._scratch = mujoco.MjData(model)
        names = [f for f in _MJ_FIELDS + _MJ_DERIVED if hasattr(model, f)]
        self._nominal = {f: np.array(getattr(model, f), copy=True) for f in names}
        self._stat = (float(model.stat.meaninertia), float(model.stat.meanmass), float(model.stat.meansize))
        self._bodies = np.flatnonzero(self._nominal["body_mass"] > 0)
        self._bodies = self._bodies[self._bodies > 0]
        if base is None:
            with_joints = [b for b in range(1, model.nbody) if model.body_jntnum[b] > 0]
            self._base = with_joints[0] if with_joints else 1
        else:
            self._base = int(model.body(base).id)
        self._push_dofs = self._horizontal_dofs(push_body if push_body is not None else self._base)
        # motors (no bias) get stronger through their gear; servos through their force limit
        bias = model.actuator_biastype
        self._motor = np.flatnonzero(bias == mujoco.mjtBias.mjBIAS_NONE)
        self._servo = np.flatnonzero((bias != mujoco.mjtBias.mjBIAS_NONE) & (model.actuator_forcelimited > 0))
        self._modified = False

    def _horizontal_dofs(self, body: str | int) -> list[int]:
        """Velocity indices that move ``body`` along world x and y (free joint or x/y slides)."""
        m = self.model
        b = int(m.body(body).id) if isinstance(body, str) else int(body)
        dofs = []
        for j in range(m.body_jntadr[b], m.body_jntadr[b] + m.body_jntnum[b]):
            kind, adr = m.jnt_type[j], m.jnt_dofadr[j]
            if kind == self._mj.mjtJoint.mjJNT_FREE:
                return [adr, adr + 1]
            if kind == self._mj.mjtJoint.mjJNT_SLIDE:
                axis = m.jnt_axis[j]
                if abs(axis[2]) < 1e-9 and np.isclose(np.linalg.norm(axis), 1.0):
                    dofs.append(adr)
        return dofs

    def axes(self) -> tuple[str, ...]:
        n = self._nominal
        offered = []
        if len(self._bodies):
            offered.append("mass_scale")
        if len(self._bodies) > 1:
            offered.append("per_link_mass_scale")
        if (n["geom_friction"][:, 0] > 0).any():
            offered.append("friction_scale")
        if (n["dof_damping"] > 0).any():
            offered.append("damping_scale")
        if len(self._motor) or len(self._servo):
            offered.append("actuator_scale")
            if self.model.nu > 1:
                offered.append("per_actuator_scale")
        if (n["geom_solref"][:, 0] > 0).any():
            offered.append("contact_softness")
        offered.append("com_offset")
        return tuple(offered)

    def sizes(self) -> dict[str, int]:
        return {"per_link_mass_scale": len(self._bodies), "per_actuator_scale": self.model.nu}

    def restore(self) -> None:
        if not self._modified:
            return
        m = self.model
        for f, value in self._nominal.items():
            getattr(m, f)[...] = value
        m.stat.meaninertia, m.stat.meanmass, m.stat.meansize = self._stat
        self._modified = False

    def apply(self, factors: Factors) -> None:
        self.restore()
        if not factors:
            return
        m, n = self.model, self._nominal
        s = _combined(factors, "mass_scale", "per_link_mass_scale", len(self._bodies))
        if s is not None:
            m.body_mass[self._bodies] = n["body_mass"][self._bodies] * s
            m.body_inertia[self._bodies] = n["body_inertia"][self._bodies] * s[:, None]
        if "friction_scale" in factors:  # MuJoCo takes the larger geom friction: scaling all scales it
            m.geom_friction[:, 0] = n["geom_friction"][:, 0] * float(factors["friction_scale"])
        if "damping_scale" in factors:
            m.dof_damping[:] = n["dof_damping"] * float(factors["damping_scale"])
        s = _combined(factors, "actuator_scale", "per_actuator_scale", m.nu)
        if s is not None:
            m.actuator_gear[self._motor, 0] = n["actuator_gear"][self._motor, 0] * s[self._motor]
            m.actuator_forcerange[self._servo] = n["actuator_forcerange"][self._servo] * s[self._servo, None]
        if "contact_softness" in factors:  # time constants only: a negative solref is a stiffness, left as is
            k = float(factors["contact_softness"])
            for f in ("geom_solref", "jnt_solref", "pair_solref"):
                if f in n and len(n[f]):
                    timeconst = n[f][:, 0]
                    getattr(m, f)[:, 0] = np.where(timeconst > 0, timeconst * k, timeconst)
        if "com_offset" in factors:
            m.body_ipos[self._base] = n["body_ipos"][self._base] + np.asarray(factors["com_offset"], float)
        self._modified = True
        self._mj.mj_setConst(m, self._scratch)  # derived constants (subtree mass, invweights, ...) follow

    def can_push(self) -> bool:
        return bool(self._push_dofs)

    def push(self, dv: np.ndarray) -> None:
        for dof, v in zip(self._push_dofs, np.asarray(dv, float)):
            self.data.qvel[dof] += v


# -------------------------------------------------------------------------------------------- PyBullet
class BulletPhysics:
    """Randomization in one PyBullet client.

    ``bodies()`` lists the bodies in the scene (asked at each apply: a task may reload one). Masses and
    inertias of every link with mass are scaled (``changeDynamics(mass, localInertiaDiagonal)``); lateral
    friction of every link of every body is scaled by √s, since Bullet multiplies the two frictions of a
    contact: every contact's friction then scales by s. ``strength`` is the task's own array of motor
    torques / force limits (scaled in place); ``damping`` its own array of joint damping, when it applies
    damping itself. ``push(body, dv)`` is the task's push (None: no pushes). PyBullet cannot move a link's
    centre of mass, so ``com_offset`` is not offered. ``contact_softness`` is not offered either: Bullet's
    nominal contact is hard (no time constant to scale), and ``changeDynamics(contactStiffness,
    contactDamping)`` would swap in a different, absolute spring-damper contact rather than scale this one.
    """

    def __init__(self, client: int, bodies: Callable[[], list[int]], strength: np.ndarray | None = None,
                 damping: np.ndarray | None = None, push: Callable[[np.ndarray], None] | None = None) -> None:
        import pybullet

        self._p, self.client, self._bodies = pybullet, client, bodies
        self._strength, self._damping, self._push = strength, damping, push
        self._strength0 = None if strength is None else strength.copy()
        self._damping0 = None if damping is None else damping.copy()
        self._nominal: dict[tuple[int, int], tuple[float, float, tuple[float, ...]]] = {}
        self._modified = False

    def _links(self) -> list[tuple[int, int]]:
        p, c = self._p, self.client
        return [(b, link) for b in self._bodies() for link in range(-1, p.getNumJoints(b, physicsClientId=c))]

    def _nominal_of(self, body: int, link: int) -> tuple[float, float, tuple[float, ...]]:
        key = (body, link)
        if key not in self._nominal:
            info = self._p.getDynamicsInfo(body, link, physicsClientId=self.client)
            self._nominal[key] = (info[0], info[1], tuple(info[2]))  # mass, lateral friction, inertia
        return self._nominal[key]

    def axes(self) -> tuple[str, ...]:
        offered = ["mass_scale", "per_link_mass_scale", "friction_scale"]
        if self._damping is not None and (self._damping0 > 0).any():
            offered.append("damping_scale")
        if self._strength is not None:
            offered.append("actuator_scale")
            if len(self._strength) > 1:
                offered.append("per_actuator_scale")
        return tuple(offered)

    def sizes(self) -> dict[str, int]:
        return {"per_link_mass_scale": len(self._massive()),
                "per_actuator_scale": 0 if self._strength is None else len(self._strength)}

    def _massive(self) -> list[tuple[int, int]]:
        return [key for key in self._links() if self._nominal_of(*key)[0] > 0]

    def restore(self) -> None:
        if not self._modified:
            return
        p, c = self._p, self.client
        for body, link in self._links():
            if (body, link) not in self._nominal:
                continue
            mass, friction, inertia = self._nominal[(body, link)]
            if mass > 0:
                p.changeDynamics(body, link, mass=mass, localInertiaDiagonal=inertia, physicsClientId=c)
            p.changeDynamics(body, link, lateralFriction=friction, physicsClientId=c)
        if self._strength is not None:
            self._strength[:] = self._strength0
        if self._damping is not None:
            self._damping[:] = self._damping0
        self._modified = False

    def apply(self, factors: Factors) -> None:
        self.restore()
        if not factors:
            return
        p, c = self._p, self.client
        self._modified = True
        links = self._massive()
        s = _combined(factors, "mass_scale", "per_link_mass_scale", len(links))
        if s is not None:
            for (body, link), k in zip(links, s):
                mass, _, inertia = self._nominal_of(body, link)
                p.changeDynamics(body, link, mass=mass * k, localInertiaDiagonal=[i * k for i in inertia],
                                 physicsClientId=c)
        if "friction_scale" in factors:
            root = math.sqrt(float(factors["friction_scale"]))
            for body, link in self._links():
                friction = self._nominal_of(body, link)[1]
                p.changeDynamics(body, link, lateralFriction=friction * root, physicsClientId=c)
        s = None if self._strength is None else _combined(factors, "actuator_scale", "per_actuator_scale",
                                                           len(self._strength))
        if s is not None:
            self._strength[:] = self._strength0 * s
        if "damping_scale" in factors and self._damping is not None:
            self._damping[:] = self._damping0 * float(factors["damping_scale"])

    def can_push(self) -> bool:
        return self._push is not None

    def push(self, dv: np.ndarray) -> None:
        if self._push is not None:
            self._push(np.asarray(dv, float))
