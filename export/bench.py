"""Latency of the robot-side runtime: ``OnnxPolicy.act`` vs raw onnxruntime, and a 1 kHz ControlLoop.

    trpo bench runtime FILE.onnx [--json]          python benchmarks/bench_runtime.py [FILE.onnx] [--json]

numpy + onnxruntime only, like the runtime it measures. Without FILE a 64×64 tanh MLP
(obs 11, act 3, the Hopper shapes) is built with :mod:`export.builders` (needs `onnx`) and the output says so. Floors
(docs/runtime.md): ``act()`` p99 ≤ 20 µs at batch 1; a 1 kHz loop meets ≥ 99.9 % of its deadlines.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnxruntime as ort

from export.control import ControlLoop, realtime_scheduling
from export.runtime import INPUT_NAME, OUTPUT_NAME, OnnxPolicy, session_options

ACT_P99_FLOOR_US = 20.0
DEADLINE_FLOOR = 0.999


def _timed(fn: Callable[[np.ndarray], Any], inputs: np.ndarray, n: int) -> dict[str, float]:
    """p50/p99/max in µs of ``fn(inputs[i % len(inputs)])`` over ``n`` calls after a warm-up."""
    for i in range(min(n, 2000)):
        fn(inputs[i % len(inputs)])
    times = np.empty(n, np.int64)
    clock = time.perf_counter_ns
    for i in range(n):
        x = inputs[i % len(inputs)]
        t = clock()
        fn(x)
        times[i] = clock() - t
    us = times / 1e3
    return {"p50_us": float(np.percentile(us, 50)), "p99_us": float(np.percentile(us, 99)),
            "max_us": float(us.max())}


class ReplayRobot:
    """A robot that replays recorded observations and stores actions in a preallocated array."""

    def __init__(self, observations: np.ndarray, act_shape: tuple[int, ...]):
        self.observations = observations
        self.actions = np.zeros((len(observations), *act_shape), np.float32)
        self.i = 0
        self.safe_calls = 0

    def read_observation(self) -> np.ndarray:
        return self.observations[self.i % len(self.observations)]

    def apply_action(self, action: Any) -> None:
        self.actions[self.i % len(self.observations)] = action
        self.i += 1

    def safe_state(self) -> None:
        self.safe_calls += 1


def _rt_priority_if_allowed(priority: int = 10) -> int | None:
    try:
        with realtime_scheduling(priority):
            return priority
    except (PermissionError, AttributeError):
        return None


def _build_test_policy(directory: Path) -> Path:
    """The 64×64 test MLP of :mod:`export.builders` (needs the ``onnx`` package, not TensorFlow)."""
    from export.builders import write_mlp

    return write_mlp(directory / "bench_mlp.onnx", obs_dim=11, act_dim=3, hidden=(64, 64))


def bench_runtime(
    path: str | os.PathLike[str] | None = None,
    n: int = 20_000,
    loop_seconds: float = 5.0,
    rate_hz: float = 1000.0,
    realtime: bool = True,
) -> dict[str, Any]:
    """Measure ``act()`` and raw ``session.run`` at batch 1 (``n`` calls each) and a ControlLoop at
    ``rate_hz`` for ``loop_seconds``, all under SCHED_FIFO when ``realtime`` and permitted (the
    result's ``scheduling`` says which). Returns a JSON-ready dict."""
    if n < 100:
        raise ValueError(f"n must be >= 100 for a meaningful p99, got {n}")
    with tempfile.TemporaryDirectory() as tmp:
        built = path is None
        policy_path = _build_test_policy(Path(tmp)) if built else Path(path)
        policy = OnnxPolicy(policy_path)
        raw = ort.InferenceSession(str(policy_path), session_options(1), providers=["CPUExecutionProvider"])
    m = policy.metadata
    obs = np.random.default_rng(0).standard_normal((1000, m.obs_dim)).astype(np.float32)
    batch1 = obs[:, None, :]  # raw onnxruntime needs (1, obs_dim)
    out_names = [OUTPUT_NAME]
    priority = _rt_priority_if_allowed() if realtime else None
    with realtime_scheduling(priority):  # as on a robot: other processes must not preempt the timing
        act_stats = _timed(policy.act, obs, n)
        raw_stats = _timed(lambda x: raw.run(out_names, {INPUT_NAME: x}), batch1, n)

    robot = ReplayRobot(obs, () if m.discrete else (m.act_dim,))
    loop = ControlLoop(
        policy, robot, rate_hz=rate_hz, max_consecutive_overruns=None, realtime_priority=priority
    )
    report = loop.run(duration_s=loop_seconds)
    return {
        "policy": "built-in 64x64 tanh MLP test policy (export/builders.py)" if built else str(path),
        "obs_dim": m.obs_dim,
        "act_dim": m.act_dim,
        "discrete": m.discrete,
        "n_calls": n,
        "scheduling": f"SCHED_FIFO {priority}" if priority else "normal priority",
        "act": act_stats,
        "raw_onnxruntime": raw_stats,
        "loop": {**report.to_dict(), "realtime_priority": priority},
        "floors": {
            "act_p99_us<=20": act_stats["p99_us"] <= ACT_P99_FLOOR_US,
            "loop_deadlines>=99.9%": report.deadline_met_fraction >= DEADLINE_FLOOR,
        },
        "machine": {
            "date": datetime.date.today().isoformat(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1min": os.getloadavg()[0],
            "numpy": np.__version__,
            "onnxruntime": ort.__version__,
        },
    }


def _print_human(r: dict[str, Any]) -> None:
    loop = r["loop"]
    print(f"policy: {r['policy']}  (obs {r['obs_dim']}, act {r['act_dim']}, discrete={r['discrete']})")
    print(f"batch-1 latency over {r['n_calls']} calls, {r['scheduling']} (µs):  p50     p99      max")
    for name in ("act", "raw_onnxruntime"):
        s = r[name]
        print(f"  {name:<40} {s['p50_us']:7.1f} {s['p99_us']:7.1f} {s['max_us']:8.1f}")
    rt = loop["realtime_priority"]
    print(f"control loop {loop['rate_hz']:.0f} Hz for {loop['elapsed_s']:.2f} s "
          f"({'SCHED_FIFO ' + str(rt) if rt else 'normal priority'}): {loop['ticks']} ticks, "
          f"{loop['missed_deadlines']} missed ({100 * loop['deadline_met_fraction']:.3f} % met), "
          f"{loop['skipped_ticks']} skipped, reason {loop['reason']!r}")
    print(f"  tick latency p50 {loop['latency_p50_us']:.1f} µs, p99 {loop['latency_p99_us']:.1f} µs, "
          f"max {loop['latency_max_us']:.1f} µs; wake-up late p99 {loop['wake_late_p99_us']:.1f} µs, "
          f"max {loop['wake_late_max_us']:.1f} µs")
    ok = ", ".join(f"{k}: {'ok' if v else 'MISSED'}" for k, v in r["floors"].items())
    mach = r["machine"]
    print(f"floors: {ok}")
    print(f"machine: {mach['date']}, {mach['platform']}, Python {mach['python']}, {mach['cpus']} CPUs, "
          f"load {mach['load_avg_1min']:.2f}, onnxruntime {mach['onnxruntime']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", help="exported policy .onnx (default: a built 64x64 test MLP)")
    parser.add_argument("--n", type=int, default=20_000, help="timed act()/run calls (default 20000)")
    parser.add_argument("--loop-seconds", type=float, default=5.0, help="control loop duration (default 5)")
    parser.add_argument("--rate-hz", type=float, default=1000.0, help="control loop rate (default 1000)")
    parser.add_argument("--no-realtime", action="store_true", help="do not try SCHED_FIFO for the loop")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = bench_runtime(args.file, args.n, args.loop_seconds, args.rate_hz, realtime=not args.no_realtime)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_human(result)
    return 0 if all(result["floors"].values()) else 1


