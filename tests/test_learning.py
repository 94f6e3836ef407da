"""Learning, for real and seeded: TRPO must solve CartPole-v1 and InvertedPendulum-v5 within 100k steps.

Budgets are below the 100k ceiling (each run stops at its own total); the threshold is checked on the
deterministic policy over 10 evaluation episodes that training never saw. Measured 2026-11-21 (2 cores, load 8,
these settings, evaluating every few iterations): the deterministic policy scores the maximum from 6k steps
(CartPole, 500) and 15k steps (InvertedPendulum, 1,000) on, and keeps it up to 61k / 82k; the budgets leave
2-4x that.
"""

from __future__ import annotations

import pytest

from trpo_tf import TRPOConfig, load_policy, train
import robots
from trpo_tf.episodes import run_episodes

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("task, steps, n_steps, threshold", [
    ("CartPole-v1", 24_576, 2048, 475.0),
    ("InvertedPendulum-v5", 30_720, 1024, 950.0),
])
def test_trpo_learns(tmp_path, task, steps, n_steps, threshold):
    # No XLA (jit_compile=False): its compile (~15 s a run) costs more than it saves over these short runs.
    config = TRPOConfig(task=task, total_steps=steps, n_steps=n_steps, seed=1, eval_episodes=10, jit_compile=False)
    result = train(config, tmp_path / "run", progress=False)
    assert result["last"]["env_steps"] <= 100_000
    assert result["eval"]["mean_return"] >= threshold, result["eval"]
    # The saved policy is the one that was evaluated: reloading gives the same deterministic return.
    policy = load_policy(tmp_path / "run")
    again = run_episodes(policy.act, robots.resolve_task(task).env_factory(), episodes=3, seed=10_000 + config.seed)
    assert again["returns"] == result["eval"]["returns"][:3]
