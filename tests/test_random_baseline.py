"""benchmarks/random_baseline.py: uniform random actions on the evaluation seeds, and the issue-3 target."""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import random_baseline as rb  # noqa: E402


def test_uniform_actor_stays_in_the_box_and_is_seeded() -> None:
    space = gym.spaces.Box(low=np.array([-1.0, 0.0]), high=np.array([1.0, 3.0]), dtype=np.float32)
    a = rb.uniform_actor(space, seed=3)(np.zeros((500, 7), np.float32))
    b = rb.uniform_actor(space, seed=3)(np.zeros((500, 7), np.float32))
    assert a.shape == (500, 2)
    assert np.all(a >= space.low) and np.all(a <= space.high)
    assert a[:, 1].max() > 2.5 and a[:, 0].min() < -0.5  # it covers the box, not a corner
    np.testing.assert_array_equal(a, b)


def test_uniform_actor_rejects_unbounded_or_discrete_spaces() -> None:
    with pytest.raises(ValueError, match="bounded"):
        rb.uniform_actor(gym.spaces.Box(-np.inf, np.inf, shape=(2,)), seed=0)
    with pytest.raises(ValueError, match="Box"):
        rb.uniform_actor(gym.spaces.Discrete(3), seed=0)  # type: ignore[arg-type]


def test_random_baseline_on_a_real_task_is_reproducible() -> None:
    first = rb.random_baseline("gripper-reach", episodes=2)
    second = rb.random_baseline("gripper-reach", episodes=2)
    assert first["returns"] == second["returns"]
    assert len(first["returns"]) == 2 and first["seed"] == rb.EVAL_SEED
    assert first["mean_length"] == 50  # 50-step episodes, nothing terminates them early
    assert first["mean_return"] < 0  # distance penalty every step; random actions rarely reach
    assert "success_rate" in first

