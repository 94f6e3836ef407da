"""Regenerate every learning curve in ``docs/results/<task>/curve.png`` from its ``metrics.csv``.

Each figure: training ``episode_return_mean`` (stochastic policy, episodes finished in that iteration)
against ``env_steps``, the random-policy return and the issue-3 target as dashed lines (from
``random.json``, written by ``benchmarks/random_baseline.py``), the final deterministic evaluation as a
marker (from ``eval.json``), and ``success_rate`` on a second axis where the task reports one.
(``trpo plot`` draws one column of run directories; this script works on the committed copies.)

    .venv/bin/python benchmarks/plot_results.py            # every task under docs/results
    .venv/bin/python benchmarks/plot_results.py gripper-reach   # some
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from trpo_tf.monitor import metrics_columns, read_metrics  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
SUCCESS_TARGETS = {"gripper-reach": 0.9, "panda-reach-bullet": 0.9,
                   "gripper-pick-lift": 0.3, "panda-pick-lift-bullet": 0.3}


def return_target(random_return: float) -> float:
    """Issue 3's "≥ 3× the random return", read as improvement over random ≥ 2·|random|.

    For a positive random return R this is exactly 3R; for a negative one (e.g. HalfCheetah, where random
    torques cost more than they move) it asks for +|R|, where a literal 3R would sit *below* random.
    """
    return random_return + 2.0 * abs(random_return)


def read_columns(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    """Columns of a metrics.csv as float arrays (empty cells → NaN), through the project's one reader
    (``trpo_tf.monitor.read_metrics``); ValueError names a missing column."""
    missing = [n for n in names if n not in metrics_columns(path)]
    if missing:
        raise ValueError(f"{path} has no column(s) {missing}; expected trpo_tf.monitor.METRIC_COLUMNS")
    rows = read_metrics(path)
    return {n: np.array([r[n] for r in rows], float) for n in names}


def _json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def plot_task(task_dir: Path) -> Path:
    """Draw ``task_dir/curve.png`` from ``task_dir/metrics.csv`` (+ random.json, eval.json if present)."""
    metrics = task_dir / "metrics.csv"
    if not metrics.is_file():
        raise ValueError(f"expected {metrics} (a copy of a run's metrics.csv)")
    cols = read_columns(metrics, ["env_steps", "episode_return_mean", "episode_return_std", "success_rate"])
    x, y, s = cols["env_steps"], cols["episode_return_mean"], cols["episode_return_std"]
    task = task_dir.name
    random, final = _json(task_dir / "random.json"), _json(task_dir / "eval.json")

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ok = np.isfinite(x) & np.isfinite(y)
    ax.plot(x[ok], y[ok], color="tab:blue", lw=1.4, label="training return (stochastic policy)")
    band = ok & np.isfinite(s)
    ax.fill_between(x[band], (y - s)[band], (y + s)[band], color="tab:blue", alpha=0.15, lw=0,
                    label="± std over the iteration's episodes")
    if random is not None:
        r = float(random["mean_return"])
        ax.axhline(r, color="gray", ls="--", lw=1, label=f"random policy {r:.1f}")
        if task not in SUCCESS_TARGETS:
            target = return_target(r)
            ax.axhline(target, color="tab:red", ls=":", lw=1.2, label=f"target {target:.1f}")
    if final is not None and len(x[ok]):
        ax.errorbar([x[ok][-1]], [final["mean_return"]], yerr=[final["std_return"]], fmt="D", color="black",
                    ms=5, capsize=3, label=f"deterministic eval {final['mean_return']:.1f}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()

    succ = cols["success_rate"]
    if np.isfinite(succ).any():
        ax2 = ax.twinx()
        keep = np.isfinite(x) & np.isfinite(succ)
        ax2.plot(x[keep], succ[keep], color="tab:green", lw=1.2, label="training success rate")
        if task in SUCCESS_TARGETS:
            ax2.axhline(SUCCESS_TARGETS[task], color="tab:green", ls=":", lw=1.2,
                        label=f"success target {SUCCESS_TARGETS[task]:.0%}")
        if final is not None and "success_rate" in final:
            ax2.plot([x[ok][-1]], [final["success_rate"]], "s", color="darkgreen", ms=6,
                     label=f"deterministic eval success {final['success_rate']:.0%}")
        ax2.set_ylim(-0.02, 1.02)
        ax2.set_ylabel("success rate")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, fontsize=7, loc="best")
    ax.set_title(f"{task}: TRPO, seed 0")
    fig.tight_layout()
    out = task_dir / "curve.png"
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*",
                        help="task directories under docs/results (default: those with metrics.csv and random.json)")
    args = parser.parse_args(argv)
    # Default: the campaign's tasks (those with a random baseline); other runs' directories are left alone.
    dirs = [RESULTS / t for t in args.tasks] or sorted(
        p for p in RESULTS.iterdir() if (p / "metrics.csv").is_file() and (p / "random.json").is_file())
    for d in dirs:
        print(plot_task(d))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
