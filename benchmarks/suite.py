"""A resumable multi-seed results suite: train every (task, seed) to ``--steps``, evaluate, publish a table
and one mean ± std learning curve per task (issue 11; Henderson et al. 2018, "Deep RL that Matters").

    .venv/bin/python benchmarks/suite.py --tasks hopper walker2d half-cheetah ant --seeds 0 1 2 \\
        --steps 1000000 --runs runs/suite --publish docs/results/suite

Every run lives in ``RUNS/<task>/seed-<s>`` and is driven through the ``trpo`` command, so it is the same
training a user gets. The ledger ``RUNS/suite.json`` records each training segment (command, exit code, wall
seconds, steps before/after) and which runs are done. Killed? Run the same command again: finished runs are
skipped, a started one continues from its newest checkpoint (``trpo train --resume``), nothing is redone.
A run is done when ``trpo train`` exited 0 with ``metrics.csv`` at ``--steps`` and wrote ``eval.json`` (the
runner's deterministic evaluation: 10 episodes on seeds 10000 + seed, unless ``--set eval_episodes=N``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Published TRPO returns at 1M steps on the MuJoCo v3 tasks (ours are v5): (mean, std or None).
PEERS: dict[str, dict[str, tuple[float, float | None]]] = {
    "SB3-contrib (3 seeds)": {"half-cheetah": (1803, 46), "ant": (3554, 591), "hopper": (3372, 215),
                              "walker2d": (4502, 234)},
    "RL-Zoo (1 tuned run)": {"half-cheetah": (1785, None), "ant": (4982, None), "hopper": (3618, None),
                             "walker2d": (4933, None)},
    "Tianshou (10 seeds)": {"half-cheetah": (4471, 805), "ant": (2867, 708), "hopper": (2046, 1038),
                            "walker2d": (3827, 783)},
}


def trpo_command() -> list[str]:
    """The ``trpo`` console script of this interpreter's environment (or ``python -m trpo_tf``)."""
    script = Path(sys.executable).with_name("trpo")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "trpo_tf"]


class Ledger:
    """``RUNS/suite.json``: the training segments and the finished runs, rewritten atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        self.data.setdefault("runs", {})

    def run(self, key: str) -> dict[str, Any]:
        return self.data["runs"].setdefault(key, {"segments": [], "done_steps": 0})

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=2), encoding="utf-8")
        os.replace(tmp, self.path)


def last_env_steps(run_dir: Path) -> int:
    """``env_steps`` of the last metrics row (0 if the run has none)."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return 0
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return int(float(rows[-1]["env_steps"])) if rows else 0


def train_run(task: str, seed: int, steps: int, run_dir: Path, overrides: list[str], ledger: Ledger,
              log_dir: Path) -> bool:
    """Bring one run to ``steps`` (new or resumed) unless the ledger says it is done; True when done."""
    entry = ledger.run(f"{task}/seed-{seed}")
    if entry["done_steps"] >= steps and (run_dir / "eval.json").is_file():
        print(f"  {task} seed {seed}: done ({entry['done_steps']:,} steps), skipped", flush=True)
        return True
    if (run_dir / "config.yaml").is_file():
        args = ["train", "--resume", str(run_dir), "--steps", str(steps), "--no-progress"]
    else:
        args = ["train", "--task", task, "--seed", str(seed), "--steps", str(steps), "--out", str(run_dir),
                "--no-progress"] + (["--set", *overrides] if overrides else [])
    before = last_env_steps(run_dir)
    print(f"  {task} seed {seed}: {'resuming at ' + format(before, ',') if before else 'training'} → "
          f"{steps:,} steps", flush=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{task}-seed-{seed}.log"
    start = time.time()
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"\n$ trpo {' '.join(args)}\n")
        out.flush()
        code = subprocess.run(trpo_command() + args, stdout=out, stderr=subprocess.STDOUT).returncode
    seconds = time.time() - start
    after = last_env_steps(run_dir)
    entry["segments"].append({"args": args, "exit_code": code, "seconds": round(seconds, 2),
                              "steps_before": before, "steps_after": after,
                              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
    done = code == 0 and after >= steps and (run_dir / "eval.json").is_file()
    if done:
        entry["done_steps"] = steps
    ledger.save()
    print(f"  {task} seed {seed}: exit {code} after {seconds:,.0f} s at {after:,} steps (log {log})", flush=True)
    return done


def task_summary(task: str, seeds: list[int], steps: int, runs: Path, ledger: Ledger) -> dict[str, Any] | None:
    """Mean ± std of the seeds' deterministic evaluations, worst seed, wall time and steps/s (finished runs)."""
    per_seed = []
    for seed in seeds:
        run_dir, entry = runs / task / f"seed-{seed}", ledger.run(f"{task}/seed-{seed}")
        if entry["done_steps"] < steps or not (run_dir / "eval.json").is_file():
            continue
        ev = json.loads((run_dir / "eval.json").read_text(encoding="utf-8"))
        wall = sum(s["seconds"] for s in entry["segments"])
        per_seed.append({"seed": seed, "eval_mean_return": ev["mean_return"], "eval_std_return": ev["std_return"],
                         "wall_s": wall, "steps_per_s": last_env_steps(run_dir) / wall if wall else None,
                         **({"success_rate": ev["success_rate"]} if "success_rate" in ev else {})})
    if not per_seed:
        return None
    means = [r["eval_mean_return"] for r in per_seed]
    worst = min(per_seed, key=lambda r: r["eval_mean_return"])
    rates = [r["steps_per_s"] for r in per_seed if r["steps_per_s"]]
    return {"task": task, "steps": steps, "seeds": [r["seed"] for r in per_seed], "mean": statistics.fmean(means),
            "std": statistics.pstdev(means), "worst_seed": worst["seed"], "worst": worst["eval_mean_return"],
            "wall_s_mean": statistics.fmean(r["wall_s"] for r in per_seed),
            "steps_per_s_mean": statistics.fmean(rates) if rates else None, "per_seed": per_seed}


def _peer(task: str, name: str) -> str:
    value = PEERS[name].get(task)
    if value is None:
        return "—"
    mean, std = value
    return f"{mean:,.0f}" + (f" ± {std:,.0f}" if std is not None else "")


def markdown_table(summaries: list[dict[str, Any]]) -> str:
    """The results table: ours (mean ± std over seeds of each seed's 10-episode deterministic mean) and peers."""
    head = ("| task | seeds | ours: mean ± std | worst seed | wall time / run | steps/s | "
            + " | ".join(PEERS) + " |")
    lines = [head, "|" + "---|" * (6 + len(PEERS))]
    for s in summaries:
        rate = f"{s['steps_per_s_mean']:,.0f}" if s["steps_per_s_mean"] else "—"
        lines.append(f"| {s['task']} | {len(s['seeds'])} | {s['mean']:,.0f} ± {s['std']:,.0f} | "
                     f"{s['worst']:,.0f} (seed {s['worst_seed']}) | {s['wall_s_mean'] / 60:.1f} min | {rate} | "
                     + " | ".join(_peer(s["task"], name) for name in PEERS) + " |")
    return "\n".join(lines) + "\n"


def publish(summaries: list[dict[str, Any]], runs: Path, out: Path) -> None:
    """Copy each finished run's metrics.csv, config.yaml, eval.json; draw curve.png; write table.md, suite.json."""
    out.mkdir(parents=True, exist_ok=True)
    for s in summaries:
        dirs = [runs / s["task"] / f"seed-{seed}" for seed in s["seeds"]]
        for seed, run_dir in zip(s["seeds"], dirs):
            dest = out / s["task"] / f"seed-{seed}"
            dest.mkdir(parents=True, exist_ok=True)
            for name in ("metrics.csv", "config.yaml", "eval.json"):
                shutil.copy2(run_dir / name, dest / name)
        curve = out / s["task"] / "curve.png"
        subprocess.run(trpo_command() + ["plot", *map(str, dirs), "--out", str(curve)], check=True,
                       stdout=subprocess.DEVNULL)
    (out / "table.md").write_text(markdown_table(summaries), encoding="utf-8")
    (out / "suite.json").write_text(json.dumps(summaries, indent=2), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["hopper", "walker2d", "half-cheetah", "ant"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1_000_000, help="environment steps per run")
    parser.add_argument("--runs", type=Path, default=Path("runs/suite"), help="where the run directories live")
    parser.add_argument("--publish", type=Path, help="copy results, curves and the table here (e.g. docs/results/suite)")
    parser.add_argument("--set", dest="overrides", nargs="+", default=[], metavar="KEY=VALUE",
                        help="config overrides for new runs (passed to trpo train --set)")
    args = parser.parse_args(argv)
    if args.steps < 1 or any(s < 0 for s in args.seeds):
        parser.error("--steps must be >= 1 and seeds >= 0")
    args.runs.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(args.runs / "suite.json")
    failed = []
    for task in args.tasks:  # one run at a time: each uses both cores
        for seed in args.seeds:
            if not train_run(task, seed, args.steps, args.runs / task / f"seed-{seed}", args.overrides, ledger,
                             args.runs / "logs"):
                failed.append(f"{task}/seed-{seed}")
    summaries = [s for t in args.tasks if (s := task_summary(t, args.seeds, args.steps, args.runs, ledger))]
    print()
    print(markdown_table(summaries), end="")
    if args.publish and summaries:
        publish(summaries, args.runs, args.publish)
        print(f"published to {args.publish}")
    if failed:
        print(f"not finished: {', '.join(failed)} (see {args.runs / 'logs'}; run the same command to continue)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
