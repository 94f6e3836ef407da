"""trpo_tf/app/skill.py: time to skill on a fast real task — training stops at the first evaluation that
reaches the target, evaluations run on separate env copies and are not counted as training steps."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from trpo_tf.app.skill import bench_skill, process_start_time


def test_process_start_time_is_in_the_past():
    import time

    assert 0.0 <= time.time() - process_start_time() < 24 * 3600


@pytest.mark.parametrize("overlap", [True, False])
def test_cartpole_crossing_is_reported_and_training_stops(overlap):
    out = bench_skill("cartpole", target=150.0, seed=0, eval_every=2048, eval_episodes=2, max_steps=40_960,
                      overrides={"n_steps": 1024, "jit_compile": False}, overlap=overlap)
    assert out["reached"], out["evaluations"]
    first = next(e for e in out["evaluations"] if e["mean_return"] >= 150.0)
    assert out["env_steps_at_target"] == first["env_steps"] and out["return_at_target"] == first["mean_return"]
    assert all(e["mean_return"] < 150.0 for e in out["evaluations"] if e["env_steps"] < first["env_steps"])
    # stopped soon after the crossing (one evaluation may still have been in flight), far below the budget
    assert out["train_env_steps"] <= first["env_steps"] + 2 * 2048 < 40_960
    assert 0.0 < out["seconds_to_target"] <= out["wall_s"]


def test_cli_skill_prints_json_and_exits_1_when_the_target_is_not_reached():
    proc = subprocess.run([sys.executable, "-m", "trpo_tf", "bench", "skill", "--task", "cartpole", "--target",
                           "1e9", "--max-steps", "1024", "--eval-every", "1024", "--eval-episodes", "1",
                           "--set", "n_steps=512", "jit_compile=false"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["reached"] is False and out["train_env_steps"] == 1024 and len(out["evaluations"]) == 1


def test_cli_skill_bad_task_is_a_usage_error():
    proc = subprocess.run([sys.executable, "-m", "trpo_tf", "bench", "skill", "--task", "no-such-task",
                           "--target", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("trpo: error:")
