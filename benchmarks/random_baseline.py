"""Random-policy baseline: uniform random actions on the same evaluation seeds a trained run uses.

``trpo train`` evaluates the deterministic policy on episodes seeded ``10_000 + seed`` … (10 episodes,
see ``trpo_tf/runner.py``, ``trpo_tf/episodes.py``). This script runs the same episodes with actions drawn uniformly from the
action box, and writes ``docs/results/<task>/random.json``. The learning targets of issue 3 are defined
against it (see ``plot_results.return_target``).

    .venv/bin/python benchmarks/random_baseline.py walker2d ant-bullet     # some tasks
    .venv/bin/python benchmarks/random_baseline.py --all                   # every task with a results dir
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

# The episode loop is TensorFlow-free: this script never loads TensorFlow (so import order does not matter).
from trpo_tf.episodes import run_episodes  # noqa: E402
import robots  # noqa: E402

RESULTS = ROOT / "docs" / "results"
EVAL_SEED = 10_000  # trpo_tf.runner evaluates on seeds 10_000 + config.seed, config.seed = 0 here


def uniform_actor(space: gym.spaces.Box, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """A callable ``obs[B, obs_dim] -> actions[B, act_dim]`` drawing U(low, high) from its own generator."""
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(f"expected a Box action space, got {type(space).__name__}")
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise ValueError("expected a bounded action box (finite low and high) for uniform random actions")
    rng = np.random.default_rng(seed)

    def act(obs: np.ndarray) -> np.ndarray:
        return rng.uniform(space.low, space.high, size=(obs.shape[0], *space.shape)).astype(np.float32)

    return act


def random_baseline(task: str, episodes: int = 10, seed: int = EVAL_SEED) -> dict[str, Any]:
    """Evaluate uniform random actions on ``task`` (a registered task name) like ``trpo evaluate`` does."""
    spec = robots.get_task(task)
    make_env = robots.resolve_task(spec.name).env_factory()
    env = make_env()
    space = env.action_space
    env.close()
    result = run_episodes(uniform_actor(space, seed), make_env, episodes=episodes, seed=seed)
    result["task"] = spec.name
    result["policy"] = "uniform random actions"
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", help="registered task names")
    parser.add_argument("--all", action="store_true", help="every task that has a docs/results/<task> directory")
    parser.add_argument("--episodes", type=int, default=10)
    args = parser.parse_args(argv)
    tasks = list(args.tasks)
    if args.all:
        tasks += sorted(p.name for p in RESULTS.iterdir() if p.is_dir() and p.name not in tasks)
    if not tasks:
        parser.error("name at least one task, or --all")
    for task in tasks:
        result = random_baseline(task, args.episodes)
        out = RESULTS / task / "random.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        extra = f", success {result['success_rate']:.0%}" if "success_rate" in result else ""
        print(f"{task}: random return {result['mean_return']:.2f} ± {result['std_return']:.2f}{extra} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
