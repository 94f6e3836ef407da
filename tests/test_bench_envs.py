"""benchmarks/bench_envs.py runs on any registered task and prints one JSON object."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_envs.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_prints_steps_per_second_for_each_task() -> None:
    result = run("--tasks", "hopper-bullet", "CartPole-v1", "--steps", "300")
    assert result.returncode == 0, result.stderr
    speeds = json.loads(result.stdout)
    assert set(speeds) == {"hopper-bullet", "CartPole-v1"}
    assert all(v > 0 for v in speeds.values())


def test_cpu_clock_option() -> None:
    result = run("--tasks", "hopper-bullet", "--steps", "300", "--clock", "cpu")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hopper-bullet"] > 0


def test_unknown_task_is_a_usage_error() -> None:
    result = run("--tasks", "no-such-robot", "--steps", "10")
    assert result.returncode == 2
    assert "unknown task 'no-such-robot'" in result.stderr
