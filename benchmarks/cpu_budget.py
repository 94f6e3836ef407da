"""Where the machine's CPU goes while a preset trains, and the highest share of the raw env rate that CPU allows
(issue 13). Linux only (it reads /proc). Prints one JSON object.

    .venv/bin/python benchmarks/cpu_budget.py --task hopper --steps 100000

1. **Raw**: the preset's vector env (same n_envs and layout) steps uniformly random actions. The machine's busy
   core-seconds over the stepping alone (``/proc/stat``, every process) give the CPU cost of one env step.
2. **Training**: the preset trains ``--steps`` steps. From the third iteration on, each iteration's wall time and
   CPU are read: this process's threads (``/proc/self/task/*/schedstat``: the main thread steps block 0, acts
   and runs the loop; the others run the compiled policy step and critic fit), its child processes (rollout
   workers) and the machine's busy and idle time.
3. **Ceiling**: if no core ever idled, an iteration would last (its busy core-ms) / cores. The share of the raw
   rate the loop could then reach is the stepping's core-ms over all busy core-ms, whatever the VM's speed
   (stepping and learner slow down together). Over the whole ``train()`` call, compilation included, the same
   ratio bounds the overall rate.

Run it on an otherwise idle machine: other processes' CPU counts as the run's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def machine_busy_idle() -> tuple[float, float]:
    """Seconds all cores have been busy and idle since boot (``/proc/stat``; iowait counts as idle)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _TICK, idle / _TICK


def thread_seconds(pid: int | str = "self") -> dict[int, float]:
    """CPU seconds of each thread of a process (``schedstat``: nanoseconds on a CPU)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out[int(task.name)] = int((task / "schedstat").read_text().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):  # the thread ended between the listing and the read
            pass
    return out


def descendants(root: int) -> list[int]:
    """Every process below ``root`` (rollout workers, and the forkserver that starts them)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            parents[int(stat.parent.name)] = int(text[text.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            pass
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


class Snapshot:
    """Wall clock, this process's threads, its descendants' CPU and the machine's busy/idle seconds, at once."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.threads = thread_seconds()
        self.children = {pid: sum(thread_seconds(pid).values()) for pid in descendants(os.getpid())}
        self.busy, self.idle = machine_busy_idle()


def measure_raw(task: str, config: Any, steps: int, seed: int) -> dict[str, float]:
    """Random-action steps/s of the preset's layout (:func:`trpo_tf.app.bench.random_stepper`) and the machine's
    busy core-seconds per 1,000 steps over the stepping alone."""
    import robots
    from trpo_tf.app.bench import random_stepper

    resolved = robots.resolve_task(task)
    vector_steps = max(1, steps // config.n_envs)
    with random_stepper(resolved.gym_id, config.n_envs, config.vector_env,
                        {**resolved.env_kwargs, **config.env_kwargs}, seed, config.n_workers) as step:
        busy0 = machine_busy_idle()[0]
        wall = step(vector_steps)
        busy = machine_busy_idle()[0] - busy0
    env_steps = vector_steps * config.n_envs
    return {"steps_per_s": env_steps / wall, "busy_core_ms_per_1k_steps": 1e6 * busy / env_steps,
            "busy_cores": busy / wall}


def measure_training(config: Any) -> dict[str, Any]:
    """Train the preset; per-iteration CPU of iterations 3…N, and the whole train() call's busy core-seconds."""
    from trpo_tf.app.training import make_trainer

    # /proc is read at the window's two ends only (after the 3rd iteration and after the last), not in the loop.
    calls = 0
    window: list[Snapshot] = []

    def callback(row: dict[str, Any], acting: Any) -> bool:
        nonlocal calls
        calls += 1
        if calls == 3 or int(row["env_steps"]) >= config.total_steps:
            window.append(Snapshot())
        return False

    with tempfile.TemporaryDirectory(prefix="trpo-cpu-budget-") as tmp:
        trainer = make_trainer(config, os.path.join(tmp, "run"), progress=False)
        start = Snapshot()
        trainer.train(callback)
        end = Snapshot()
    if calls < 4:
        raise SystemExit("cpu_budget: need at least 4 iterations; raise --steps")
    first, last = window[0], window[-1]
    n = calls - 3
    main_tid = os.getpid()  # the main thread's id is the process id on Linux
    main = last.threads.get(main_tid, 0.0) - first.threads.get(main_tid, 0.0)
    threads = sum(v - first.threads.get(t, 0.0) for t, v in last.threads.items() if t != main_tid)
    children = sum(v - first.children.get(p, 0.0) for p, v in last.children.items())
    busy, idle = last.busy - first.busy, last.idle - first.idle

    def per_iteration(seconds: float) -> float:
        return round(1000.0 * seconds / n, 1)

    return {
        "iterations": n,
        "ms_per_iteration": per_iteration(last.wall - first.wall),
        "core_ms_per_iteration": {"main_thread": per_iteration(main), "other_threads": per_iteration(threads),
                                  "child_processes": per_iteration(children), "machine_busy": per_iteration(busy),
                                  "machine_idle": per_iteration(idle)},
        "idle_share": round(idle / max(busy + idle, 1e-9), 3),
        "train_call": {"wall_s": round(end.wall - start.wall, 2), "busy_core_s": round(end.busy - start.busy, 2),
                       "env_steps": int(trainer.env_steps)},
    }


def cpu_budget(task: str, steps: int, raw_steps: int, seed: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """Raw before and after training (their mean), training, and the ceilings they imply."""
    from trpo_tf import compile_cache

    compile_cache.enable()  # as the ``trpo`` command does; TRPO_XLA_CACHE=0 turns it off
    from trpo_tf.app.training import config_for_task

    config = config_for_task(task, {"total_steps": steps, "seed": seed, "eval_episodes": 0, **overrides})
    from trpo_tf.app.bench import machine_info

    before = measure_raw(task, config, raw_steps, seed)
    training = measure_training(config)
    after = measure_raw(task, config, raw_steps, seed)
    raw = {k: round((before[k] + after[k]) / 2.0, 1 if k != "busy_cores" else 2) for k in before}
    step_core_ms = raw["busy_core_ms_per_1k_steps"] / 1000.0
    stepping = config.batch_size * step_core_ms  # core-ms of one batch's stepping at the raw cost
    busy = training["core_ms_per_iteration"]["machine_busy"]
    cores = os.cpu_count() or 1
    call = training["train_call"]
    return {
        "task": task,
        "layout": {"vector_env": config.vector_env, "n_envs": config.n_envs, "batch": config.batch_size},
        "raw": {**raw, "before_after_steps_per_s": [round(before["steps_per_s"], 1), round(after["steps_per_s"], 1)]},
        "training": training,
        "steady_fraction_of_raw": round(config.batch_size / training["ms_per_iteration"] * 1000.0
                                        / raw["steps_per_s"], 3),
        "ceiling": {
            "stepping_core_ms_per_iteration": round(stepping, 1),
            "rest_core_ms_per_iteration": round(busy - stepping, 1),  # learner, acting, loop, messages
            "steady_fraction_of_raw_if_no_core_idled": round(stepping / busy, 3),
            "overall_fraction_of_raw_if_no_core_idled": round(call["env_steps"] * step_core_ms / 1000.0
                                                              / call["busy_core_s"], 3),
            "cores": cores,
        },
        "machine": machine_info(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="hopper")
    parser.add_argument("--steps", type=int, default=100_000, help="training env steps (default 100000)")
    parser.add_argument("--raw-steps", type=int, default=40_000, help="random-action steps, before and after")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="preset overrides")
    args = parser.parse_args(argv)
    if not Path("/proc/stat").exists():
        print("cpu_budget: needs Linux's /proc", file=sys.stderr)
        return 2
    from trpo_tf.app.cli import native_stderr_captured
    from trpo_tf.app.errors import UsageError
    from trpo_tf.config import parse_assignments  # the `trpo --set` parser: same values, same errors

    try:
        overrides = parse_assignments(args.set)
        with native_stderr_captured():  # TensorFlow's C++ start-up lines, as the `trpo` command hides them
            result = cpu_budget(args.task, args.steps, args.raw_steps, args.seed, overrides)
    except (UsageError, ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc  # a KeyError's str is quoted
        print(f"cpu_budget: {message}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
