"""export/robustness.py: sweeps of an ONNX policy over randomization axes, on the real simulators."""

from __future__ import annotations

from pathlib import Path

import pytest

import numpy as np

import robots
from export.robustness import SweepError, axis_settings, parse_point, plan, sweep
from robots.wrappers import PhysicsRandomization
from export.sim import run_onnx
from export.builders import write_mlp

TASK = "hopper-twin"


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mlp(tmp_path_factory.mktemp("robust") / "p.onnx", obs_dim=11, act_dim=3, bound=1.0)


def test_a_point_with_every_factor_nominal_equals_plain_run_onnx(policy: Path) -> None:
    plain = run_onnx(policy, task=TASK, episodes=3, seed=5)
    report = sweep(policy, task=TASK, episodes=3, seed=5, axes=["delay"],
                   points=["mass=1,friction=1.0,actuator=1,delay=0,obs_noise=0,push=0"])
    (point,) = report["points"]
    assert point["mean_return"] == plain["mean_return"] == report["nominal"]["mean_return"]
    assert point["relative_return"] == 1.0
    delays = report["axes"]["delay"]
    assert [d["value"] for d in delays] == [0, 1, 2, 3] and delays[0]["mean_return"] == plain["mean_return"]
    assert delays[3]["mean_return"] != plain["mean_return"]  # a 3-step delay is a different world
    assert report["twin"]["task"] == "hopper-twin-bullet" and "relative_return" in report["twin"]


def test_each_axis_runs_and_progress_is_reported(policy: Path) -> None:
    seen = []
    report = sweep(policy, task=TASK, episodes=1, twin=False, progress=lambda d, n, label: seen.append((d, n)))
    assert set(report["axes"]) == {"mass", "friction", "actuator", "contact", "delay", "obs_noise", "push"}
    assert seen[-1][0] == seen[-1][1] == 1 + sum(len(v) for v in report["axes"].values())
    mass = {p["value"]: p["mean_return"] for p in report["axes"]["mass"]}
    assert mass[1.0] == report["nominal"]["mean_return"] and len(set(mass.values())) > 1


def test_point_syntax() -> None:
    assert parse_point("mass=0.8, delay=2") == {"mass_scale": 0.8, "action_delay_steps": 2}
    assert parse_point("push=2") == {"push_velocity": 1.0}  # × the default 0.5 m/s
    assert parse_point("friction_scale=1.3") == {"friction_scale": 1.3}


@pytest.mark.parametrize("axes, points, words", [
    (["gravity"], (), "unknown sweep axis 'gravity'"),
    (None, ["mass=-1"], "must be > 0"),
    (None, ["delay=1.5"], "whole steps"),
    (None, ["mass"], "expects key=value"),
    (None, ["mass=heavy"], "not a number"),
    (None, ["wind=2"], "unknown axis 'wind'"),
])
def test_bad_sweeps_are_refused_before_any_episode(axes, points, words) -> None:
    with pytest.raises(SweepError, match=words):
        plan(TASK, axes, points)


def test_axes_a_task_cannot_vary_are_named() -> None:
    with pytest.raises(SweepError, match="cartpole cannot vary mass"):
        plan("cartpole", ["mass"])
    assert set(plan("cartpole")["sweeps"]) == {"delay", "obs_noise"}


@pytest.mark.parametrize("name, fields", [
    ("mass", ("body_mass", "body_inertia", "body_subtreemass")),
    ("actuator", ("actuator_gear",)),
    ("contact", ("geom_solref", "jnt_solref")),
])
def test_a_sweep_point_is_a_value_training_draws(name: str, fields: tuple[str, ...]) -> None:
    """Training's axis and the sweep's axis mean the same thing: the model a training episode draws (one
    whole-model factor) is, bit for bit, the model of the sweep point at that factor."""
    key = axis_settings(name, 1.0).popitem()[0]
    trained = robots.make_env(TASK, randomization={key: [0.5, 1.5]})
    trained.reset(seed=3)
    wrapper = trained
    while not isinstance(wrapper, PhysicsRandomization):
        wrapper = wrapper.env
    factor = wrapper.factors[key]
    assert np.ndim(factor) == 0 and factor != 1.0
    swept = robots.make_env(TASK, randomization=axis_settings(name, factor))
    swept.reset(seed=3)
    for field in fields:
        a, b = getattr(trained.unwrapped.model, field), getattr(swept.unwrapped.model, field)
        assert np.array_equal(a, b), field
        assert not np.array_equal(a, getattr(robots.make_env(TASK).unwrapped.model, field)), field
    trained.close()
    swept.close()
