"""runtime/ (the ``trpo-tf-runtime`` distribution): README's robot-side install works alone.

``pip install ./runtime`` into a FRESH venv (no TensorFlow, no onnx, no trpo_tf; numpy and onnxruntime
come from the package index or pip's cache) gives ``export.runtime.OnnxPolicy`` and
``export.control.ControlLoop``; a policy really trained and exported by this repo then runs through the
loop against a small robot in that venv, and every action stays inside the policy's bounds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trained_runs import exported_run

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_MODULES = {"__init__.py", "metadata.py", "runtime.py", "control.py"}

# Runs inside the fresh venv (python -I: no PYTHONPATH, no checkout on sys.path).
ROBOT_SCRIPT = r'''
import importlib.metadata as md
import json
import sys

import numpy as np

from export.control import ControlLoop, RobotInterface
from export.runtime import OnnxPolicy, float32_bounds

blocked = {}
for name in ("tensorflow", "onnx", "tf2onnx", "trpo_tf", "robots"):
    try:
        __import__(name)
        blocked[name] = "imported"
    except ModuleNotFoundError as e:
        blocked[name] = "ModuleNotFoundError: " + str(e)


class NoisyRobot:
    """A robot whose sensors return wild readings (0.1 to 1e4 times the normal scale, and one NaN)."""

    def __init__(self, obs_dim, n_ticks):
        self.rng = np.random.default_rng(0)
        self.obs_dim, self.n_ticks, self.tick = obs_dim, n_ticks, 0
        self.actions = []

    def read_observation(self):
        self.tick += 1
        scale = 10.0 ** self.rng.integers(-1, 5)
        obs = (self.rng.standard_normal(self.obs_dim) * scale).astype(np.float32)
        if self.tick == 7:
            obs[0] = np.nan                      # a broken sensor: on_invalid="hold" keeps the last action
        return obs

    def apply_action(self, action):
        self.actions.append(np.array(action, dtype=np.float32, copy=True))

    def safe_state(self):
        self.actions.append(None)


policy = OnnxPolicy(sys.argv[1], on_invalid="hold")
meta = policy.metadata
robot = NoisyRobot(meta.obs_dim, 200)
assert isinstance(robot, RobotInterface)
# No overrun limit: this checks the actions, not the timing of a loaded CI machine.
report = ControlLoop(policy, robot, rate_hz=200.0, max_consecutive_overruns=None).run(max_ticks=200)
low, high = float32_bounds(meta.action_low, meta.action_high)
acts = np.stack(robot.actions)
print(json.dumps({
    "blocked": blocked,
    "files": sorted(str(f) for f in md.files("trpo-tf-runtime") if f.suffix == ".py"),
    "requires": md.requires("trpo-tf-runtime"),
    "distributions": sorted(d.metadata["Name"].lower() for d in md.distributions()),
    "export_file": __import__("export").__file__,
    "reason": report.reason, "ticks": report.ticks,
    "n_actions": len(robot.actions), "act_dim": meta.act_dim, "task": meta.task,
    "inside": bool(np.all((acts >= low) & (acts <= high))),
    "n_distinct": len({a.tobytes() for a in acts}),
    "n_invalid_inputs": policy.n_invalid_inputs,
    "low": low.tolist(), "high": high.tolist(), "min": acts.min(0).tolist(), "max": acts.max(0).tolist(),
}))
'''


def test_runtime_folder_links_the_runtime_modules() -> None:
    """runtime/export/ holds exactly the runtime layer, as symlinks to the one copy in export/."""
    linked = ROOT / "runtime" / "export"
    assert {p.name for p in linked.iterdir() if p.suffix == ".py"} == RUNTIME_MODULES
    for name in RUNTIME_MODULES:
        link = linked / name
        assert link.is_symlink(), f"{link} must be a symlink (see runtime/pyproject.toml)"
        assert link.resolve() == (ROOT / "export" / name).resolve()


def test_runtime_installs_alone_and_runs_an_exported_policy(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, result = exported_run("hopper-bullet", tmp_path_factory)   # trained + exported by the real exporter
    # A copy of the checkout's two folders, so pip's in-place build does not write into the repository.
    src = tmp_path / "src"
    shutil.copytree(ROOT / "runtime", src / "runtime", symlinks=True,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    shutil.copytree(ROOT / "export", src / "export", ignore=shutil.ignore_patterns("__pycache__"))

    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env, timeout=120)
    py = venv / "bin" / "python"
    pip = subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "./runtime"],
                         cwd=src, env=env, capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]

    script = tmp_path / "robot.py"
    script.write_text(ROBOT_SCRIPT)
    run = subprocess.run([str(py), "-I", str(script), str(result.path)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])

    assert all(v.startswith("ModuleNotFoundError") for v in out["blocked"].values()), out["blocked"]
    assert out["files"] == sorted(f"export/{m}" for m in RUNTIME_MODULES)
    assert sorted(r.split(">")[0].split("<")[0].strip() for r in out["requires"]) == ["numpy", "onnxruntime"]
    assert not {"tensorflow", "onnx", "tf2onnx", "trpo-tf"} & set(out["distributions"])
    assert Path(out["export_file"]).is_relative_to(venv), out["export_file"]   # the installed copy

    assert out["reason"] == "completed" and out["ticks"] == 200 and out["n_actions"] == 200
    assert out["task"] == "hopper-bullet" and out["act_dim"] == 3
    assert out["inside"], (out["low"], out["high"], out["min"], out["max"])
    assert out["n_distinct"] > 100         # the policy really responded to the readings
    assert out["n_invalid_inputs"] == 1    # the NaN tick was held, not passed to the robot
