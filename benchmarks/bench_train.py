"""End-to-end training env-steps/s of a task's preset, next to the raw rate of the same vector env stepping
random actions (same n_envs and sync/async mode). Prints one JSON object.

    .venv/bin/python benchmarks/bench_train.py --task hopper --steps 100000
    .venv/bin/python benchmarks/bench_train.py --task hopper --steps 40960 --set vector_env=async n_envs=2

``--set`` takes config ``key=value`` overrides (values parsed as YAML), as ``trpo train --set`` does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from trpo_tf.app.bench import bench_train  # noqa: E402


def _overrides(assignments: list[str]) -> dict:
    out = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        out[key] = yaml.safe_load(raw)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="hopper", help="registered task name or gymnasium id (default hopper)")
    parser.add_argument("--steps", type=int, default=100_000, help="training env steps (default 100000)")
    parser.add_argument("--raw-env-steps", type=int, default=20_000, help="random-action steps for the raw rate")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = bench_train(task=args.task, steps=args.steps, overrides=_overrides(args.set),
                         raw_env_steps=args.raw_env_steps, seed=args.seed)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
