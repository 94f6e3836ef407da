"""``trpo robustness``, ``trpo tasks NAME`` (randomization) and ``--set randomization=...`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import snapshot, trpo, user_error_line
from export.builders import write_mlp


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mlp(tmp_path_factory.mktemp("rcli") / "p.onnx", obs_dim=11, act_dim=3, bound=1.0)


def test_robustness_writes_json_png_and_the_sidecar(policy: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep.png"
    r = trpo("robustness", str(policy), "--task", "hopper-twin", "--episodes", "1", "--axes", "delay", "push",
             "--point", "mass=1,delay=0", "--json", "--out", str(out), "--write-sidecar")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert set(report["axes"]) == {"delay", "push"} and report["twin"]["task"] == "hopper-twin-bullet"
    assert report["points"][0]["mean_return"] == report["nominal"]["mean_return"]
    assert out.stat().st_size > 1000 and "[" in r.stderr  # the PNG and a progress line
    sidecar = json.loads(Path(f"{policy}.json").read_text())
    assert sidecar["robustness"]["nominal"] == report["nominal"]


@pytest.mark.parametrize("args, words", [
    (["--axes", "gravity"], "unknown sweep axis 'gravity'"),
    (["--point", "mass=-2"], "must be > 0"),
    (["--point", "delay=x"], "not a number"),
    (["--task", "nope"], "unknown task 'nope'"),
    (["--out", "plot.jpg"], "must name a .png"),
])
def test_robustness_bad_input_exits_2_with_one_line_and_writes_nothing(policy: Path, tmp_path: Path,
                                                                       args: list[str], words: str) -> None:
    before = snapshot(tmp_path)
    r = trpo("robustness", str(policy), "--task", "hopper-twin", *args, "--out", str(tmp_path / "x.png"),
             cwd=tmp_path) if "--out" not in args else trpo("robustness", str(policy), *args, cwd=tmp_path)
    assert words in user_error_line(r)
    assert snapshot(tmp_path) == before


def test_tasks_name_lists_what_it_can_randomize() -> None:
    r = trpo("tasks", "hopper-twin-bullet")
    assert r.returncode == 0, r.stderr
    assert "mass_scale" in r.stdout and "push_velocity" in r.stdout and "com_offset" not in r.stdout
    assert "contact_softness" not in r.stdout  # hard contacts in PyBullet
    assert "[trpo robustness --axes mass: 0.6, 0.8, 1, 1.2, 1.4]" in r.stdout  # the same quantity, swept
    data = json.loads(trpo("tasks", "hopper", "--json").stdout)
    axes = data["randomization"]["axes"]
    assert axes["friction_scale"]["default"] == [0.5, 1.25] and axes["contact_softness"]["default"] == [0.2, 1.5]
    assert axes["actuator_scale"]["robustness_sweep"].startswith("actuator:")
    assert axes["per_link_mass_scale"]["robustness_sweep"] is None


def test_train_refuses_a_bad_randomization_before_writing(tmp_path: Path) -> None:
    r = trpo("train", "--task", "hopper-twin-bullet", "--steps", "64", "--out", str(tmp_path / "run"),
             "--set", "randomization={com_offset: 0.01}", cwd=tmp_path)
    assert "cannot randomize 'com_offset'" in user_error_line(r)
    assert not (tmp_path / "run").exists()


def test_a_randomized_run_records_its_randomization_in_config_and_exported_file(tmp_path: Path) -> None:
    """Trains for real (a few hundred steps, envs in a worker process too), then exports."""
    run = tmp_path / "run"
    r = trpo("train", "--task", "hopper", "--steps", "512", "--out", str(run), "--no-progress", "--set",
             "jit_compile=false", "n_envs=2", "n_steps=128", "vector_env=async", "n_workers=2", "critic_epochs=1",
             "eval_episodes=1", "randomization={default: true, action_delay_steps: [0, 2]}", timeout=400)
    assert r.returncode == 0, r.stderr
    config = (run / "config.yaml").read_text()
    assert "mass_scale:\n  - 0.8\n  - 1.2" in config and "action_delay_steps:\n  - 0\n  - 2" in config
    assert "per_link_mass_scale:\n  - 0.9\n  - 1.1" in config and "contact_softness:\n  - 0.2\n  - 1.5" in config
    r = trpo("export", str(run), timeout=400)
    assert r.returncode == 0, r.stderr
    meta = json.loads((run / "policy.onnx.json").read_text())
    assert meta["randomization"]["action_delay_steps"] == [0, 2] and meta["randomization"]["com_offset"] == 0.02
