"""The results table of ``docs/results.md``, computed from the committed files under ``docs/results/<task>/``.

Per task it reads ``metrics.csv`` (training curve), ``eval.json`` (final deterministic evaluation, 10
episodes), ``random.json`` (``benchmarks/random_baseline.py``) and ``config.yaml`` (the run's full config).
"Steps to threshold" is the first iteration whose *training* statistic (stochastic policy, episodes
finished in that iteration) reaches the target: success rate for the gripper tasks, mean return otherwise,
with the return target of :func:`plot_results.return_target` (3× random, or random + 2·|random|).

    .venv/bin/python benchmarks/results_table.py      # prints Markdown rows
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plot_results import RESULTS, SUCCESS_TARGETS, read_columns, return_target  # noqa: E402

HEADER = ("| task | budget (steps run) | target | steps to target (training curve) | final deterministic eval "
          "| random policy | train steps/s | seed | command |\n|---|---|---|---|---|---|---|---|---|")


def task_row(task_dir: Path) -> dict[str, Any]:
    """The numbers of one task directory; ValueError if a required file is missing."""
    needed = [task_dir / n for n in ("metrics.csv", "config.yaml")]
    missing = [p.name for p in needed if not p.is_file()]
    if missing:
        raise ValueError(f"{task_dir} lacks {missing}; expected a copy of a run's metrics.csv and config.yaml")
    task = task_dir.name
    cols = read_columns(task_dir / "metrics.csv",
                        ["env_steps", "time_s", "episode_return_mean", "success_rate"])
    config = yaml.safe_load((task_dir / "config.yaml").read_text(encoding="utf-8"))
    random_path = task_dir / "random.json"
    random = json.loads(random_path.read_text(encoding="utf-8")) if random_path.is_file() else None
    final_path = task_dir / "eval.json"
    final = json.loads(final_path.read_text(encoding="utf-8")) if final_path.is_file() else None

    if task in SUCCESS_TARGETS:
        target, stat, label = SUCCESS_TARGETS[task], cols["success_rate"], f"success ≥ {SUCCESS_TARGETS[task]:.0%}"
    elif random is not None:
        target = return_target(float(random["mean_return"]))
        stat, label = cols["episode_return_mean"], f"return ≥ {target:.1f}"
    else:  # no random baseline measured: no target to cross
        target, stat, label = math.inf, cols["episode_return_mean"], "— (no random.json)"
    hit = [i for i, v in enumerate(stat) if math.isfinite(v) and v >= target]
    steps, seconds = cols["env_steps"], cols["time_s"]
    return {
        "task": task, "budget": int(config["total_steps"]), "steps_run": int(steps[-1]), "target": label,
        "steps_to_target": int(steps[hit[0]]) if hit else None, "final": final, "random": random,
        "steps_per_s": float(steps[-1] / seconds[-1]), "seed": int(config["seed"]),
        "command": f"trpo train --task {task} --steps {int(config['total_steps'])} --seed {int(config['seed'])}",
    }


def markdown_row(r: dict[str, Any]) -> str:
    final = r["final"]
    if final is None:
        final_text = "none (run did not finish)"
    else:
        final_text = f"{final['mean_return']:.1f} ± {final['std_return']:.1f}"
        if "success_rate" in final:
            final_text += f", success {final['success_rate']:.0%}"
    rnd = r["random"]
    rnd_text = f"{rnd['mean_return']:.1f} ± {rnd['std_return']:.1f}" if rnd is not None else "not measured"
    if rnd is not None and "success_rate" in rnd:
        rnd_text += f", success {rnd['success_rate']:.0%}"
    if r["steps_to_target"] is not None:
        to_target = f"{r['steps_to_target']:,}"
    else:
        to_target = "not reached" if rnd is not None or r["task"] in SUCCESS_TARGETS else "—"
    return (f"| {r['task']} | {r['budget']:,} ({r['steps_run']:,}) | {r['target']} | {to_target} | {final_text} "
            f"| {rnd_text} | {r['steps_per_s']:,.0f} | {r['seed']} | `{r['command']}` |")


def main() -> int:
    print(HEADER)
    for d in sorted(p for p in RESULTS.iterdir() if (p / "metrics.csv").is_file()):
        print(markdown_row(task_row(d)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
