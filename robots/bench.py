"""Env-steps per second of registered tasks: one process, one env, uniformly random actions.

Resets (on termination or truncation) are inside the timed loop, as in training. Prints one JSON
object ``{task: steps_per_s}`` on stdout; progress notes go to stderr. ``--clock cpu`` divides by this
process's CPU time instead of wall time: steadier on a machine shared with other jobs.

    trpo bench envs --tasks hopper-bullet ant-bullet --steps 20000
    .venv/bin/python benchmarks/bench_envs.py --tasks hopper-bullet ant-bullet --steps 20000 --clock cpu
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import gymnasium
import numpy as np

import robots  # registers every task


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def steps_per_second(task: str, steps: int, warmup: int = 200, seed: int = 0, clock: str = "wall") -> float:
    """Time ``steps`` env steps of ``task`` (name or gym id) after ``warmup`` untimed ones."""
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {clock!r}")
    now = CLOCKS[clock]
    spec = robots.find_task(task)
    gym_id, kwargs = (spec.gym_id, spec.kwargs) if spec is not None else (task, {})
    env = gymnasium.make(gym_id, **kwargs)
    try:
        env.action_space.seed(seed)
        rng = np.random.default_rng(seed)
        actions = _random_actions(env.action_space, warmup + steps, rng)
        env.reset(seed=seed)
        for a in actions[:warmup]:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        start = now()
        for a in actions[warmup:]:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        elapsed = now() - start
    finally:
        env.close()
    return steps / elapsed


def _random_actions(space: gymnasium.Space, n: int, rng: np.random.Generator) -> list:
    """Pre-drawn actions so the timing measures the env, not the sampler."""
    if isinstance(space, gymnasium.spaces.Box):
        return list(rng.uniform(space.low, space.high, (n, *space.shape)).astype(space.dtype))
    if isinstance(space, gymnasium.spaces.Discrete):
        return [int(a) for a in rng.integers(space.start, space.start + space.n, n)]
    space.seed(int(rng.integers(2**31)))
    return [space.sample() for _ in range(n)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", help="task names or gym ids (default: every registered task)")
    parser.add_argument("--simulator", help="only registered tasks of this simulator (mujoco, pybullet, ...)")
    parser.add_argument("--steps", type=int, default=10_000, help="timed steps per task (default 10000)")
    parser.add_argument("--repeats", type=int, default=1, help="report the best of this many runs")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="wall (default) or cpu time")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.repeats < 1:
        parser.error("--steps and --repeats must be >= 1")
    tasks = args.tasks or [s.name for s in robots.list_tasks() if args.simulator in (None, s.simulator)]
    for task in tasks:
        if robots.find_task(task) is None and task not in gymnasium.registry:
            parser.error(f"unknown task {task!r}; known: {', '.join(s.name for s in robots.list_tasks())}")
    results: dict[str, float] = {}
    for task in tasks:
        best = max(steps_per_second(task, args.steps, clock=args.clock) for _ in range(args.repeats))
        results[task] = round(best, 1)
        print(f"{task}: {best:,.0f} steps/s", file=sys.stderr)
    print(json.dumps(results))
    return 0


