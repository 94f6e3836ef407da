"""Project Ray training throughput to many nodes from measurements on one machine (docs/scaling.md).

A projection, not a measurement. Inputs (JSON files written by the project's benchmarks):

* ``--train``: ``trpo bench train --vector-env async ray:1 ray:2 --json`` — per worker, the busy time of one
  segment (``ray_worker_busy_s_median``) and Ray's broadcast + gather overhead per iteration
  (``ray_overhead_ms_median``) for 1 and 2 workers;
* ``--update B.json ...``: ``trpo bench update --batch B --cg-iters 25 --critic-epochs 20 --json`` at two or more
  batch sizes — the learner's serial time per iteration, fitted as a + b·B.

Model (weak scaling: every worker steps the same segment, so the batch grows with the cluster)::

    B(N)        = N · workers_per_node · envs_per_worker · n_steps           samples per iteration
    T_iter(N)   = T_segment                        (workers in parallel: constant in N)
                + c0 + c1 · N · workers_per_node   (Ray: broadcast + per-worker gather, fitted on 1 and 2
                                                    workers; c1 at least --min-ms-per-worker)
                + B(N) · bytes_per_sample / bandwidth    (segments into the driver)
                + a + b · B(N)                     (the TF update on the driver: the serial part)
    steps/s(N)  = B(N) / T_iter(N)  →  1 / b as N grows: the learner's per-sample cost caps the cluster.

    python benchmarks/scaling_model.py --train train.json --update u2048.json u16384.json [--markdown]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares intercept and slope."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - slope * mx, slope


def project(train: dict, updates: list[dict], nodes: list[int], workers_per_node: int, envs_per_worker: int,
            n_steps: int, bytes_per_sample: float, bandwidth_bytes_s: float, min_ms_per_worker: float = 0.0,
            anchor: bool = False) -> dict:
    modes = train["modes"]
    ray_modes = {int(m.split(":")[1]): row for m, row in modes.items() if m.startswith("ray:")}
    workers = sorted(ray_modes)
    # A worker's segment time, scaled to ``envs_per_worker`` envs × ``n_steps``, from the run with the most
    # workers (every core busy, as on a full node).
    most = max(workers)
    measured = train["runs"][f"ray:{most}"][0]["settings"]
    steps_measured = measured["n_envs"] / most * measured["n_steps"]
    segment_s = ray_modes[most]["ray_worker_busy_s_median"] * envs_per_worker * n_steps / steps_measured
    overhead = [ray_modes[w]["ray_overhead_ms_median"] / 1000.0 for w in workers]
    c0, c1 = fit_line([float(w) for w in workers], overhead) if len(workers) > 1 else (overhead[0], 0.0)
    c1 = max(c1, min_ms_per_worker / 1000.0)
    a, b = fit_line([float(u["settings"]["batch"]) for u in updates], [u["update_ms_median"] / 1000.0 for u in updates])
    if anchor:  # keep the fitted shape, scaled so that it gives the training run's own update time at its batch
        # policy_s has held the whole update since the fused update; files from before it add critic_s
        train_update_s = ray_modes[most]["policy_s_median"] + ray_modes[most].get("critic_s_median", 0.0)
        batch_measured = measured["n_envs"] * measured["n_steps"]
        scale = train_update_s / (a + b * batch_measured)
        a, b = a * scale, b * scale
    rows = []
    for n in nodes:
        batch = n * workers_per_node * envs_per_worker * n_steps
        parts = {"segment_s": segment_s, "ray_s": c0 + c1 * n * workers_per_node,
                 "transfer_s": batch * bytes_per_sample / bandwidth_bytes_s, "update_s": a + b * batch}
        t_iter = sum(parts.values())
        rate = batch / t_iter
        rows.append({"nodes": n, "batch": batch, "iteration_s": t_iter, "steps_per_s": rate,
                     "hours_to_1M": 1e6 / rate / 3600, "hours_to_100M": 1e8 / rate / 3600,
                     "update_share": parts["update_s"] / t_iter, **parts})
    return {"fit": {"segment_s": segment_s, "ray_c0_s": c0, "ray_c1_s_per_worker": c1, "update_a_s": a,
                    "update_b_s_per_sample": b, "ceiling_steps_per_s": 1.0 / b if b > 0 else float("inf")},
            "assumptions": {"workers_per_node": workers_per_node, "envs_per_worker": envs_per_worker,
                            "n_steps": n_steps, "bytes_per_sample": bytes_per_sample,
                            "bandwidth_bytes_s": bandwidth_bytes_s, "min_ms_per_worker": min_ms_per_worker,
                            "anchored_to_training_update": anchor},
            "rows": rows}


def markdown(result: dict) -> str:
    fit = result["fit"]
    lines = [f"fit: segment {fit['segment_s']:.3f} s; Ray {1000 * fit['ray_c0_s']:.1f} ms + "
             f"{1000 * fit['ray_c1_s_per_worker']:.2f} ms/worker; update {1000 * fit['update_a_s']:.1f} ms + "
             f"{1e6 * fit['update_b_s_per_sample']:.1f} µs/sample (ceiling {fit['ceiling_steps_per_s']:,.0f} steps/s)",
             "",
             "| nodes | batch / iteration | iteration (s) | update share | steps/s | time to 1M | time to 100M |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['nodes']} | {r['batch']:,} | {r['iteration_s']:.2f} | {100 * r['update_share']:.0f} % | "
                     f"{r['steps_per_s']:,.0f} | {_duration(r['hours_to_1M'])} | {_duration(r['hours_to_100M'])} |")
    return "\n".join(lines)


def _duration(hours: float) -> str:
    return f"{hours * 60:.1f} min" if hours < 1 else f"{hours:.1f} h"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="JSON of trpo bench train --vector-env ... --json")
    parser.add_argument("--update", nargs="+", required=True, help="JSONs of trpo bench update --batch B --json")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--workers-per-node", type=int, default=2, help="rollout workers per node (its cores)")
    parser.add_argument("--envs-per-worker", type=int, default=4)
    parser.add_argument("--n-steps", type=int, default=256, help="segment length per env (hopper preset)")
    parser.add_argument("--bytes-per-sample", type=float, default=62.0,
                        help="obs 11 + action 3 + reward as float32, 2 flag bytes (Hopper)")
    parser.add_argument("--bandwidth-gbit", type=float, default=1.0, help="driver's network, Gbit/s")
    parser.add_argument("--min-ms-per-worker", type=float, default=1.0,
                        help="floor of Ray's gather cost per worker when the 1-vs-2-worker fit is flatter (ms)")
    parser.add_argument("--anchor", action="store_true",
                        help="scale the update line to the training run's own policy+critic time at its batch "
                             "(the synthetic update bench and the run may see different machine load)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    train = json.loads(Path(args.train).read_text())
    updates = [json.loads(Path(p).read_text()) for p in args.update]
    result = project(train, updates, args.nodes, args.workers_per_node, args.envs_per_worker, args.n_steps,
                     args.bytes_per_sample, args.bandwidth_gbit * 1e9 / 8, args.min_ms_per_worker, args.anchor)
    print(markdown(result) if args.markdown else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
