"""Learning, for real and seeded: TRPO must solve CartPole-v1 and InvertedPendulum-v5 within 100k steps.

Budgets are below the 100k ceiling (each run stops at its own total); the threshold is checked on the
deterministic policy over 10 evaluation episodes that training never saw.
"""

from __future__ import annotations

import pytest

from trpo_tf import TRPOConfig, load_policy, train
import robots
from trpo_tf.episodes import run_episodes

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("task, steps, n_steps, threshold", [
    ("CartPole-v1", 61_440, 2048, 475.0),
    ("InvertedPendulum-v5", 81_920, 1024, 950.0),
])
def test_trpo_learns(tmp_path, task, steps, n_steps, threshold):
    config = TRPOConfig(task=task, total_steps=steps, n_steps=n_steps, seed=1, eval_episodes=10)
    result = train(config, tmp_path / "run", progress=False)
    assert result["last"]["env_steps"] <= 100_000
    assert result["eval"]["mean_return"] >= threshold, result["eval"]
    # The saved policy is the one that was evaluated: reloading gives the same deterministic return.
    policy = load_policy(tmp_path / "run")
    again = run_episodes(policy.act, robots.resolve_task(task).env_factory(), episodes=3, seed=10_000 + config.seed)
    assert again["returns"] == result["eval"]["returns"][:3]
