"""Latency of the exported C policy next to ``OnnxPolicy.act()`` and raw onnxruntime, in one run.

    trpo bench runtime [FILE.onnx] --c [--json]       python benchmarks/bench_runtime.py [FILE.onnx] --c

The C code is exported with :func:`export.c_export.export_c` (parity gate included) into a temporary
directory and compiled with ``-O2`` into a small timing program: each of ``n`` calls of
``trpo_policy_act`` at batch 1 is timed with ``clock_gettime(CLOCK_MONOTONIC)`` (p50/p99/max; the clock
read itself, ~20-30 ns here, is measured and reported, not subtracted), and the mean over the whole run
in thread CPU time. The same observations then go through ``OnnxPolicy.act`` and raw
``InferenceSession.run`` (export/bench.py's timer) and through the C function called from Python with
``ctypes``. Also reported: the footprint (bytes of ``const`` float data, ``size`` of ``policy.o``,
stack from ``-fstack-usage``). Without FILE the 64×64 tanh test MLP of export/bench.py is used.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from export.bench import _build_test_policy, _rt_priority_if_allowed, _timed
from export.c_export import MIN_PARITY, CBuild, compiler, export_c, load_model
from export.c_source import generate
from export.control import realtime_scheduling
from export.runtime import INPUT_NAME, OUTPUT_NAME, OnnxPolicy, session_options

SPEEDUP_FLOOR = 5.0  # issue 12: the C call at least 5× faster than OnnxPolicy.act() at batch 1

TIMER_C = r"""/* Timing program for export/c_bench.py: ./timer OBS_FILE N_ROWS N_CALLS */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "policy.h"

static long long ns(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    long rows, calls, i, failed = 0;
    float *obs;
    long long *t, cpu0, cpu1, clock_cost;
    double sink = 0.0;
    FILE *f;
#if TRPO_POLICY_DISCRETE
    int action = 0;
#else
    float action[TRPO_POLICY_ACT_DIM];
#endif
    if (argc != 4) return 2;
    rows = atol(argv[2]);
    calls = atol(argv[3]);
    obs = malloc(sizeof(float) * (size_t)rows * TRPO_POLICY_OBS_DIM);
    t = malloc(sizeof(long long) * (size_t)calls);
    f = fopen(argv[1], "rb");
    if (!obs || !t || !f || fread(obs, sizeof(float) * TRPO_POLICY_OBS_DIM, (size_t)rows, f) != (size_t)rows)
        return 3;
    fclose(f);
    for (i = 0; i < 2000; ++i) failed += trpo_policy_act(obs + (i % rows) * TRPO_POLICY_OBS_DIM,
#if TRPO_POLICY_DISCRETE
                                                         &action);
#else
                                                         action);
#endif
    for (i = 0; i < calls; ++i) { long long a = ns(CLOCK_MONOTONIC); t[i] = ns(CLOCK_MONOTONIC) - a; }
    qsort(t, (size_t)calls, sizeof *t, cmp);
    clock_cost = t[calls / 2];
    cpu0 = ns(CLOCK_THREAD_CPUTIME_ID);
    for (i = 0; i < calls; ++i) {
        const float *o = obs + (i % rows) * TRPO_POLICY_OBS_DIM;
        long long a = ns(CLOCK_MONOTONIC);
#if TRPO_POLICY_DISCRETE
        failed += trpo_policy_act(o, &action);
        t[i] = ns(CLOCK_MONOTONIC) - a;
        sink += action;
#else
        failed += trpo_policy_act(o, action);
        t[i] = ns(CLOCK_MONOTONIC) - a;
        sink += action[0];
#endif
    }
    cpu1 = ns(CLOCK_THREAD_CPUTIME_ID);
    qsort(t, (size_t)calls, sizeof *t, cmp);
    printf("{\"p50_ns\": %lld, \"p99_ns\": %lld, \"max_ns\": %lld, \"cpu_mean_ns\": %.1f, "
           "\"clock_read_ns\": %lld, \"failed\": %ld, \"sink\": %g}\n", t[calls / 2], t[calls * 99 / 100],
           t[calls - 1], (double)(cpu1 - cpu0) / (double)calls, clock_cost, failed, sink);
    free(obs);
    free(t);
    return 0;
}
"""


def main(argv: list[str] | None = None) -> int:
    """``trpo bench runtime [FILE] --c`` / ``benchmarks/bench_runtime.py [FILE] --c``: print the table (or
    JSON); exit 1 when the 5× floor is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", help="exported policy .onnx (default: the 64x64 test MLP)")
    parser.add_argument("--c", action="store_true", help="accepted for symmetry with bench_runtime.py")
    parser.add_argument("--n", type=int, default=20_000, help="timed calls of each kind (default 20000)")
    parser.add_argument("--no-realtime", action="store_true", help="do not try SCHED_FIFO")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = bench_c(args.file, args.n, realtime=not args.no_realtime)
    print(json.dumps(result, indent=2)) if args.json else print_c(result)
    return 0 if all(result["floors"].values()) else 1


def bench_c(path: str | os.PathLike[str] | None = None, n: int = 20_000, realtime: bool = True) -> dict[str, Any]:
    """ns per call at batch 1 of the C function, OnnxPolicy.act, raw onnxruntime and the C function via
    ctypes, plus the footprint; a JSON-ready dict. ``floors`` says whether C ≥ 5× faster than act().
    All four run under SCHED_FIFO when ``realtime`` and permitted (the timing program inherits it), as
    in export/bench.py; ``scheduling`` says which."""
    if n < 100:
        raise ValueError(f"n must be >= 100 for a meaningful p99, got {n}")
    cc = compiler()
    with tempfile.TemporaryDirectory(prefix="trpo-cbench-") as tmp:
        d = Path(tmp)
        built = path is None
        policy_path = _build_test_policy(d) if built else Path(path)
        export = export_c(policy_path, d / "policy", n_parity=MIN_PARITY)
        policy = OnnxPolicy(policy_path)
        raw = ort.InferenceSession(str(policy_path), session_options(1), providers=["CPUExecutionProvider"])
        m = policy.metadata
        obs = np.random.default_rng(0).standard_normal((1000, m.obs_dim)).astype(np.float32)
        (d / "obs.bin").write_bytes(obs.tobytes())
        (d / "policy" / "timer.c").write_text(TIMER_C)
        exe = d / "policy" / "timer"
        subprocess.run([*cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "timer.c", "policy.c", "-o",
                        exe.name, "-lm"], cwd=d / "policy", check=True, capture_output=True, text=True)
        header, source, plan = generate(load_model(policy_path))
        build = CBuild(d / "ctypes", header, source, plan)
        c_act = _ctypes_act(build, plan.argmax, plan.head_dim)
        priority = _rt_priority_if_allowed() if realtime else None
        with realtime_scheduling(priority):  # one run, same conditions for all four
            proc = subprocess.run([str(exe), str(d / "obs.bin"), str(len(obs)), str(n)], capture_output=True,
                                  text=True, check=True)
            act_stats = _timed(policy.act, obs, n)
            raw_stats = _timed(lambda x: raw.run([OUTPUT_NAME], {INPUT_NAME: x}), obs[:, None, :], n)
            ctypes_stats = _timed(c_act, obs, n)
        c_stats = json.loads(proc.stdout)
    c_us = c_stats["p50_ns"] / 1e3
    return {
        "policy": "built-in 64x64 tanh MLP test policy (export/builders.py)" if built else str(path),
        "obs_dim": m.obs_dim, "act_dim": m.act_dim, "discrete": m.discrete, "n_calls": n,
        "compiler": " ".join(cc) + " -std=c99 -O2",
        "scheduling": f"SCHED_FIFO {priority}" if priority else "normal priority",
        "c": {"p50_us": c_us, "p99_us": c_stats["p99_ns"] / 1e3, "max_us": c_stats["max_ns"] / 1e3,
              "cpu_mean_us": c_stats["cpu_mean_ns"] / 1e3, "clock_read_us": c_stats["clock_read_ns"] / 1e3,
              "refused_calls": c_stats["failed"]},
        "c_via_ctypes": ctypes_stats, "act": act_stats, "raw_onnxruntime": raw_stats,
        "speedup_vs_act_p50": act_stats["p50_us"] / c_us if c_us > 0 else float("inf"),
        "speedup_vs_raw_p50": raw_stats["p50_us"] / c_us if c_us > 0 else float("inf"),
        "footprint": {"const_bytes": export.footprint.const_bytes, "policy_o_text_bytes": export.footprint.text_bytes,
                      "stack_bytes": export.footprint.stack_bytes},
        "parity": {"max_abs_error": export.max_abs_error, "n_observations": export.n_observations},
        "floors": {"c_p50>=5x_faster_than_act": act_stats["p50_us"] >= SPEEDUP_FLOOR * c_us},
        "machine": {"date": datetime.date.today().isoformat(), "platform": platform.platform(),
                    "cpus": os.cpu_count(), "load_avg_1min": os.getloadavg()[0], "onnxruntime": ort.__version__},
    }


def _ctypes_act(build: CBuild, discrete: bool, act_dim: int) -> Any:
    """``trpo_policy_act`` called from Python through ctypes (what a Python controller would pay)."""
    fn = build.lib.trpo_policy_act
    out = (ctypes.c_int if discrete else ctypes.c_float * act_dim)()
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    ref = ctypes.addressof(out)
    return lambda x: fn(x.ctypes.data, ref)


def print_c(r: dict[str, Any]) -> None:
    """The human-readable table."""
    print(f"policy: {r['policy']}  (obs {r['obs_dim']}, act {r['act_dim']}, discrete={r['discrete']})")
    print(f"batch-1 latency over {r['n_calls']} calls, {r['scheduling']} (µs):  p50     p99      max")
    rows = [("C trpo_policy_act (" + r["compiler"] + ")", r["c"]), ("C via ctypes from Python", r["c_via_ctypes"]),
            ("OnnxPolicy.act()", r["act"]), ("raw onnxruntime session.run", r["raw_onnxruntime"])]
    for name, s in rows:
        print(f"  {name:<44} {s['p50_us']:7.2f} {s['p99_us']:7.2f} {s['max_us']:8.1f}")
    c, fp = r["c"], r["footprint"]
    print(f"C mean CPU time per call {c['cpu_mean_us']:.2f} µs (clock read {c['clock_read_us'] * 1e3:.0f} ns, "
          f"included above); speed-up at p50: {r['speedup_vs_act_p50']:.1f}× vs act(), "
          f"{r['speedup_vs_raw_p50']:.1f}× vs raw onnxruntime")
    print(f"footprint: {fp['const_bytes']} B const float data, policy.o text {fp['policy_o_text_bytes']} B, "
          f"stack {fp['stack_bytes']} B; parity {r['parity']['max_abs_error']:.2g} on "
          f"{r['parity']['n_observations']} observations")
    ok = ", ".join(f"{k}: {'ok' if v else 'MISSED'}" for k, v in r["floors"].items())
    mach = r["machine"]
    print(f"floors: {ok}; machine: {mach['date']}, {mach['platform']}, {mach['cpus']} CPUs, "
          f"load {mach['load_avg_1min']:.2f}, onnxruntime {mach['onnxruntime']}")
