"""Domain randomization on the real simulators: the settings' validation, seeded draws, each physics axis
read back from the model (MuJoCo) or from PyBullet, exact restoration, noise σ, delay and pushes."""

from __future__ import annotations

import mujoco
import numpy as np
import pybullet as p
import pytest

import robots
from robots.factory import describe
from robots.physics import physics_of
from robots.randomization import RandomizationError, parse
from robots.wrappers import PhysicsRandomization

WIDE = {"mass_scale": [0.5, 1.5], "per_link_mass_scale": [0.8, 1.2], "friction_scale": [0.4, 1.6],
        "damping_scale": [0.5, 1.5], "actuator_scale": [0.6, 1.2], "per_actuator_scale": [0.9, 1.1],
        "contact_softness": [0.2, 2.0], "com_offset": 0.03}


def make_env(task: str, randomization=None):
    """The task's env as the app builds it (robots.make_env), randomized as asked."""
    return robots.make_env(task, randomization=randomization)


def rollout(env, seed: int, actions: np.ndarray) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, _, terminated, truncated, _ = env.step(a)
        out.append(obs)
        if terminated or truncated:
            break
    return np.array(out)


def actions(n: int, dim: int, scale: float = 0.5, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).uniform(-1, 1, (n, dim)) * scale).astype(np.float32)


# ------------------------------------------------------------------------------------- the settings
@pytest.mark.parametrize("bad, words", [
    ({"mass": [0.8, 1.2]}, "unknown randomization axis 'mass'"),
    ({"mass_scale": [1.2, 0.8]}, "lo <= hi"),
    ({"mass_scale": [0.8]}, "[lo, hi]"),
    ({"mass_scale": -1}, "must be > 0"),
    ({"friction_scale": "lots"}, "expects a finite number"),
    ({"action_delay_steps": [0, 1.5]}, "whole steps"),
    ({"com_offset": [0, 0.1]}, "takes one number"),
    ({"push_interval_s": 1.0}, "push_velocity is not"),
    ([0.8, 1.2], "must be a mapping"),
])
def test_bad_settings_say_what_is_wrong_in_one_line(bad, words) -> None:
    with pytest.raises(RandomizationError) as err:
        parse(bad)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_settings_parse_defaults_ranges_and_fixed_values() -> None:
    r = parse({"mass_scale": True, "friction_scale": [0.5, 1.5], "action_delay_steps": [0, 2],
               "obs_noise_scale": "default", "push_velocity": 0.3, "push_interval_s": 1.5})
    assert r.axes == {"mass_scale": (0.8, 1.2), "friction_scale": (0.5, 1.5), "action_delay_steps": (0, 2),
                      "obs_noise_scale": 1.0, "push_velocity": 0.3}
    assert r.push_interval_s == 1.5 and r.to_dict()["friction_scale"] == [0.5, 1.5]
    assert not parse(None).enabled and not parse({}).enabled and not parse("off").enabled


def test_task_specific_checks_name_what_the_task_offers() -> None:
    with pytest.raises(RandomizationError, match="cannot randomize 'com_offset'.*mass_scale"):
        make_env("hopper-twin-bullet", {"com_offset": 0.01})
    with pytest.raises(RandomizationError, match="no field 'knee'"):
        make_env("hopper", {"obs_noise_scale": 1.0, "obs_noise_std": {"knee": 0.1}})
    every = describe("hopper")["axes"]
    env = make_env("hopper", "default")  # every offered axis at its default
    assert set(env.unwrapped.model.body_mass.shape) and every["mass_scale"]["default"] == [0.8, 1.2]
    env.close()


# ------------------------------------------------------------------------------------- seeded draws
@pytest.mark.parametrize("task", ["hopper", "hopper-twin-bullet"])
def test_same_seed_same_draws_other_seed_other_draws(task: str) -> None:
    settings = {k: v for k, v in WIDE.items() if k in describe(task)["axes"]}
    settings |= {"action_delay_steps": [0, 3], "obs_noise_scale": [0.5, 1.5], "action_noise": 0.05}
    envs = [make_env(task, settings) for _ in range(3)]
    acts = actions(30, 3)
    runs = [rollout(e, seed, acts) for e, seed in zip(envs, (7, 7, 8))]
    assert np.array_equal(runs[0], runs[1])
    assert runs[0].shape != runs[2].shape or not np.array_equal(runs[0], runs[2])
    draws = []
    for e in envs:
        w = e
        while not isinstance(w, PhysicsRandomization):
            w = w.env
        draws.append(w.factors)
    for axis in settings:
        if axis in draws[0]:
            assert np.array_equal(draws[0][axis], draws[1][axis]), axis
            assert not np.array_equal(draws[0][axis], draws[2][axis]), axis
    for e in envs:
        e.close()


# ------------------------------------------------------------------------------------- physics, MuJoCo
def test_mujoco_axes_change_the_model_and_restore_bit_for_bit() -> None:
    env = make_env("hopper")
    model = env.unwrapped.model
    fresh = mujoco.MjModel.from_xml_path(model_path := env.unwrapped.fullpath)
    physics = physics_of(env)
    link = np.array([1.0, 1.1, 0.9, 1.2])
    physics.apply({"mass_scale": 1.3, "per_link_mass_scale": link, "friction_scale": 0.5, "damping_scale": 2.0,
                   "actuator_scale": 0.8, "per_actuator_scale": np.array([0.5, 0.6, 0.7]),
                   "contact_softness": 0.25, "com_offset": np.array([0.01, 0.0, -0.02])})
    torso = model.body("torso").id
    assert np.allclose(model.body_mass[1:], fresh.body_mass[1:] * 1.3 * link)
    assert np.allclose(model.body_inertia[1:], fresh.body_inertia[1:] * (1.3 * link)[:, None])
    assert np.allclose(model.body_subtreemass[0], fresh.body_mass[1:] @ (1.3 * link))  # mj_setConst ran
    assert np.allclose(model.geom_friction[:, 0], fresh.geom_friction[:, 0] * 0.5)
    assert np.allclose(model.dof_damping, fresh.dof_damping * 2.0) and model.dof_damping.max() > 0
    assert np.allclose(model.actuator_gear[:, 0], fresh.actuator_gear[:, 0] * 0.8 * np.array([0.5, 0.6, 0.7]))
    assert np.allclose(model.geom_solref[:, 0], fresh.geom_solref[:, 0] * 0.25)
    assert np.allclose(model.jnt_solref[:, 0], fresh.jnt_solref[:, 0] * 0.25)
    assert np.array_equal(model.geom_solref[:, 1], fresh.geom_solref[:, 1])  # damping ratio kept
    assert np.allclose(model.body_ipos[torso], fresh.body_ipos[torso] + [0.01, 0.0, -0.02])
    physics.restore()
    for field in ("body_mass", "body_inertia", "body_ipos", "body_subtreemass", "geom_friction", "dof_damping",
                  "actuator_gear", "dof_invweight0", "body_invweight0", "actuator_acc0", "geom_solref",
                  "jnt_solref"):
        assert np.array_equal(getattr(model, field), getattr(fresh, field)), field
    assert model_path.endswith("hopper.xml")
    env.close()


def test_mujoco_servo_strength_is_its_force_limit() -> None:
    env = make_env("gripper-pick-lift")
    model = env.unwrapped.model
    nominal = model.actuator_forcerange.copy()
    physics_of(env).apply({"actuator_scale": 0.5})
    assert np.allclose(model.actuator_forcerange, nominal * 0.5)
    assert np.array_equal(model.actuator_gear[:, 0], np.ones(model.nu))  # the setpoint mapping is kept
    env.close()


@pytest.mark.parametrize("task", ["hopper-twin", "hopper-twin-bullet"])
def test_actuator_strength_changes_the_acceleration(task: str) -> None:
    """In the air (no contact), one control step from rest: the joint velocity scales with the strength."""
    def foot_velocity(scale: float) -> float:
        env = make_env(task)
        physics_of(env).apply({"actuator_scale": scale})
        env.reset(seed=0)
        base = env.unwrapped
        lifted = base.init_qpos + np.array([0, 1.0, 0, -0.5, -0.5, 0])  # 1 m up, joints off their limits
        if task == "hopper-twin":
            base.set_state(lifted, np.zeros(6))
        else:
            base._set_state(lifted, np.zeros(6))
        obs, *_ = env.step(np.array([0.0, 0.0, 0.2], np.float32))
        env.close()
        return float(obs[-1])

    full, half = foot_velocity(1.0), foot_velocity(0.5)
    assert abs(full) > 0.5 and half / full == pytest.approx(0.5, rel=0.1)


def _masses_and_strength(env) -> tuple[np.ndarray, np.ndarray]:
    """Every massive body's mass and every motor's strength, read back from the simulator."""
    base, physics = env.unwrapped, physics_of(env)
    if isinstance(getattr(base, "model", None), mujoco.MjModel):
        return base.model.body_mass[1:].copy(), base.model.actuator_gear[:, 0].copy()
    masses = [p.getDynamicsInfo(*key, physicsClientId=physics.client)[0] for key in physics._massive()]
    return np.array(masses), base.strength.copy()


@pytest.mark.parametrize("task", ["hopper-twin", "hopper-twin-bullet"])
def test_mass_and_actuator_scale_are_one_factor_for_the_whole_robot(task: str) -> None:
    """What the robustness sweep applies: every body (every motor) × the same factor, drawn per episode."""
    nominal = _masses_and_strength(make_env(task))
    env = make_env(task, {"mass_scale": [0.6, 1.4], "actuator_scale": [0.6, 1.2]})
    seen = []
    for seed in range(3):
        env.reset(seed=seed)
        mass, strength = _masses_and_strength(env)
        ratio, gain = mass / nominal[0], strength / nominal[1]
        assert np.allclose(ratio, ratio[0]) and np.allclose(gain, gain[0])  # one factor for all
        assert 0.6 <= ratio[0] <= 1.4 and 0.6 <= gain[0] <= 1.2
        assert mass.sum() == pytest.approx(nominal[0].sum() * ratio[0])  # the robot's total mass moves
        seen.append(ratio[0])
    assert len(set(np.round(seen, 9))) == 3  # a new draw each episode
    per_link = make_env(task, {"per_link_mass_scale": [0.8, 1.2], "per_actuator_scale": [0.8, 1.2]})
    per_link.reset(seed=0)
    mass, strength = _masses_and_strength(per_link)
    assert np.ptp(mass / nominal[0]) > 0.01 and np.ptp(strength / nominal[1]) > 0.01  # each its own factor
    env.close()
    per_link.close()


def _deepest_penetration(softness: float | None) -> float:
    """Drop the twin hopper from its reset pose (zero action) and return the deepest contact (m)."""
    env = make_env("hopper-twin", None if softness is None else {"contact_softness": softness})
    env.reset(seed=0)
    data, deepest = env.unwrapped.data, 0.0
    for _ in range(100):
        env.step(np.zeros(3, np.float32))
        deepest = min([deepest, *(data.contact[i].dist for i in range(data.ncon))])
    env.close()
    return -deepest


def test_contact_softness_changes_how_deep_the_foot_sinks() -> None:
    """Read back from the simulation: a stiffer contact (shorter solref time constant) is penetrated less."""
    stiff, nominal, soft = (_deepest_penetration(s) for s in (0.2, None, 2.0))
    assert stiff < 0.6 * nominal and soft > 1.5 * nominal, (stiff, nominal, soft)
    with pytest.raises(RandomizationError, match="cannot randomize 'contact_softness'"):
        make_env("hopper-twin-bullet", {"contact_softness": [0.2, 1.5]})  # hard contacts: nothing to scale


def test_an_old_config_with_per_body_era_keys_still_loads_and_trains_its_env(tmp_path) -> None:
    """config.yaml written before mass_scale / actuator_scale became whole-model factors (the committed
    hopper-twin-randomized run's settings): the keys still load and make a randomized env."""
    from trpo_tf.config import TRPOConfig

    old = ("randomization:\n  mass_scale: [0.8, 1.2]\n  friction_scale: [0.5, 1.25]\n  damping_scale: [0.8, 1.2]\n"
           "  actuator_scale: [0.9, 1.1]\n  com_offset: 0.02\n  action_delay_steps: [0, 1]\n  action_noise: 0.02\n"
           "  obs_noise_scale: 1.0\n  push_velocity: 0.5\n  push_interval_s: 2.0\n")
    (tmp_path / "config.yaml").write_text(old)
    config = TRPOConfig.load(tmp_path / "config.yaml")
    env = make_env("hopper-twin", config.randomization)
    rollout(env, 0, actions(5, 3))
    env.close()


# ------------------------------------------------------------------------------------ physics, PyBullet
@pytest.mark.parametrize("task", ["hopper-twin-bullet", "hopper-bullet", "panda-pick-lift-bullet"])
def test_bullet_axes_change_dynamics_info_and_restore(task: str) -> None:
    env = make_env(task)
    env.reset(seed=0)
    physics = physics_of(env)
    links = physics._massive()
    client = physics.client
    before = {key: p.getDynamicsInfo(*key, physicsClientId=client) for key in physics._links()}
    link = np.linspace(0.9, 1.1, len(links))
    physics.apply({"mass_scale": 1.4, "per_link_mass_scale": link, "friction_scale": 0.25, "actuator_scale": 0.5})
    for key in physics._links():
        info, nominal = p.getDynamicsInfo(*key, physicsClientId=client), before[key]
        if nominal[0] > 0:
            k = 1.4 * link[links.index(key)]
            assert info[0] == pytest.approx(nominal[0] * k)
            assert np.allclose(info[2], np.array(nominal[2]) * k)
        assert info[1] == pytest.approx(nominal[1] * 0.5)  # √0.25: a contact of two links gets 0.25
    physics.restore()
    for key in physics._links():
        info = p.getDynamicsInfo(*key, physicsClientId=client)
        assert info[0] == before[key][0] and info[1] == before[key][1] and info[2] == before[key][2]
    env.close()


# ------------------------------------------------------------------------------- nominal is the plain env
@pytest.mark.parametrize("task", ["hopper", "hopper-twin-bullet", "gripper-pick-lift"])
def test_nominal_settings_are_the_plain_env_bit_for_bit(task: str) -> None:
    acts = actions(60, robots.get_task(task).act_dim)
    plain = make_env(task)
    nominal = {"mass_scale": 1.0, "friction_scale": [1.0, 1.0], "action_delay_steps": [0, 0],
               "obs_noise_scale": 0.0, "action_noise": 0.0}
    via_settings = make_env(task, nominal)
    # and the physics path itself, forced to write nominal factors (MuJoCo: mj_setConst runs too)
    forced_env = make_env(task)
    forced = PhysicsRandomization(forced_env, physics_of(forced_env), {"mass_scale": 1.0, "friction_scale": 1.0})
    runs = [rollout(e, 3, acts) for e in (plain, via_settings, forced)]
    assert np.array_equal(runs[0], runs[1]) and np.array_equal(runs[0], runs[2])
    for e in (plain, via_settings, forced):
        e.close()


# -------------------------------------------------------------------------------- sensing and acting
def test_observation_noise_has_the_declared_sigma() -> None:
    task = "hopper"
    std = {"root_z": 0.02, "thigh_angle": 0.05}
    noisy = make_env(task, {"obs_noise_scale": 2.0, "obs_noise_std": std})
    clean = make_env(task)
    zero = np.zeros((400, 3), np.float32)  # noise must not feed back: the same actions, no policy
    diffs = []
    for seed in range(5):
        a, b = rollout(noisy, seed, zero), rollout(clean, seed, zero)
        diffs.append(a - b)
    d = np.concatenate(diffs)
    expected = np.array([0.04, 0.02, 0.1, 0.02, 0.02, 0.1, 0.1, 0.4, 0.4, 0.4, 0.4])  # 2 × σ per element
    assert np.allclose(d.std(axis=0), expected, rtol=0.1)
    assert np.allclose(d.mean(axis=0), 0.0, atol=4 * expected / np.sqrt(len(d)))


@pytest.mark.parametrize("k", [1, 3])
def test_action_delay_of_k_steps_delays_by_exactly_k(k: int) -> None:
    acts = actions(40, 3, seed=1)
    delayed = make_env("hopper", {"action_delay_steps": k})
    plain = make_env("hopper")
    shifted = np.concatenate([np.zeros((k, 3), np.float32), acts])[: len(acts)]
    assert np.array_equal(rollout(delayed, 5, acts), rollout(plain, 5, shifted))


def test_action_noise_stays_inside_the_bounds_and_changes_the_motion() -> None:
    acts = np.ones((30, 3), np.float32)  # at the bound: noise can only pull inside
    noisy, plain = make_env("hopper", {"action_noise": 0.3}), make_env("hopper")
    a, b = rollout(noisy, 2, acts), rollout(plain, 2, acts)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("task", ["hopper", "hopper-twin-bullet"])
def test_pushes_change_the_forward_velocity_on_schedule(task: str) -> None:
    hz = robots.get_task(task).control_hz
    pushed = make_env(task, {"push_velocity": 1.0, "push_interval_s": 5 / hz})  # every 5 steps
    plain = make_env(task)
    zero = np.zeros((12, 3), np.float32)
    a, b = rollout(pushed, 0, zero), rollout(plain, 0, zero)
    assert np.array_equal(a[:5], b[:5])  # nothing before the first push (after step 5)
    assert abs(a[5][5] - b[5][5]) > 0.05  # root_vx changed by the push
    assert len(pushed.pushes) == 2


def test_default_with_overrides_expands_to_every_offered_axis() -> None:
    offered = ("mass_scale", "friction_scale", "action_delay_steps")
    r = parse({"default": True, "action_delay_steps": [0, 2]}, offered=offered)
    assert r.axes == {"mass_scale": (0.8, 1.2), "friction_scale": (0.5, 1.25), "action_delay_steps": (0, 2)}
    assert parse("default", offered=offered).axes["action_delay_steps"] == (0, 1)


@pytest.mark.parametrize("task", ["ant-bullet", "panda-pick-lift-bullet", "gripper-pick-lift", "hopper-bullet"])
def test_a_push_changes_the_pushed_bodys_velocity(task: str) -> None:
    """Read back from the simulator: the base (ant), the cube (pick-lift tasks), the root slide (hopper)."""
    env = make_env(task)
    env.reset(seed=0)
    physics, base = physics_of(env), env.unwrapped

    def velocity() -> np.ndarray:
        if task == "gripper-pick-lift":
            return base.data.qvel[base._cube_dadr: base._cube_dadr + 2].copy()
        if task == "panda-pick-lift-bullet":
            return np.array(p.getBaseVelocity(base.scene.cube, physicsClientId=base.scene.client)[0][:2])
        if task == "ant-bullet":
            return np.array(p.getBaseVelocity(base.robot_id, physicsClientId=base.physics_client)[0][:2])
        return np.array([p.getJointState(base.robot_id, base._root_x, physicsClientId=base.physics_client)[1], 0.0])

    before = velocity()
    physics.push(np.array([0.4, -0.3]))
    change = velocity() - before
    expected = [0.4, 0.0] if task == "hopper-bullet" else [0.4, -0.3]  # planar: x only
    assert np.allclose(change, expected, atol=1e-6)
    env.close()
