"""benchmarks/cpu_budget.py: a short real run (MuJoCo Hopper, the workers layout, TensorFlow) whose CPU split adds
up, and a bad task is a usage error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cpu_budget.py"
pytestmark = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads Linux's /proc")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_hopper_split_adds_up() -> None:
    # 8 envs x 64 steps = 512 per iteration, 6 iterations: the 3rd to the 6th are the steady window.
    result = run("--task", "hopper", "--steps", "3072", "--raw-steps", "2000", "--set", "n_steps=64",
                 "critic_epochs=2", "cg_iters=5")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["layout"] == {"vector_env": "workers", "n_envs": 8, "batch": 512}
    assert out["raw"]["steps_per_s"] > 0 and out["raw"]["busy_core_ms_per_1k_steps"] > 0
    training = out["training"]
    assert training["iterations"] == 3
    assert training["train_call"]["env_steps"] == 3072
    cpu = training["core_ms_per_iteration"]
    # The worker process steps half the envs, the main thread the other half: both did real work.
    assert cpu["main_thread"] > 0 and cpu["child_processes"] > 0
    # What this process and its workers used is part of what the machine was busy with (jiffy rounding aside).
    assert cpu["main_thread"] + cpu["other_threads"] + cpu["child_processes"] <= 1.1 * cpu["machine_busy"] + 20
    assert 0.0 <= training["idle_share"] <= 1.0
    ceiling = out["ceiling"]
    assert ceiling["stepping_core_ms_per_iteration"] == pytest.approx(512 * out["raw"]["busy_core_ms_per_1k_steps"]
                                                                      / 1000.0, abs=0.1)
    assert 0.0 < ceiling["steady_fraction_of_raw_if_no_core_idled"]
    assert 0.0 < ceiling["overall_fraction_of_raw_if_no_core_idled"]
    assert out["steady_fraction_of_raw"] > 0


def test_unknown_task_is_a_usage_error() -> None:
    result = run("--task", "no-such-robot", "--steps", "100")
    assert result.returncode == 2
    assert result.stderr.startswith("cpu_budget: unknown task 'no-such-robot'")
    assert len(result.stderr.strip().splitlines()) == 1
