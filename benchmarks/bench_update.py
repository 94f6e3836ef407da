"""Time one full TRPO update (policy step + critic fit) on a synthetic batch; prints one JSON object.

    .venv/bin/python benchmarks/bench_update.py --cg-iters 10 --critic-epochs 5
    .venv/bin/python benchmarks/bench_update.py --cg-iters 25 --critic-epochs 20 --fisher-subsample 10
    .venv/bin/python benchmarks/bench_update.py --fisher-product nested-tape --no-jit

Every flag maps to an argument of :func:`trpo_tf.app.bench.bench_update`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from trpo_tf.app.bench import bench_update  # noqa: E402
from trpo_tf.trpo import FISHER_PRODUCTS  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--obs-dim", type=int, default=11)
    parser.add_argument("--act-dim", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--activation", default="tanh", choices=["tanh", "relu", "elu"])
    parser.add_argument("--cg-iters", type=int, default=10)
    parser.add_argument("--damping", type=float, default=0.1)
    parser.add_argument("--max-kl", type=float, default=0.01)
    parser.add_argument("--critic-epochs", type=int, default=5)
    parser.add_argument("--critic-batch", type=int, default=128)
    parser.add_argument("--fisher-subsample", type=int, default=1)
    parser.add_argument("--fisher-product", default="gauss-newton", choices=list(FISHER_PRODUCTS))
    parser.add_argument("--no-jit", dest="jit_compile", action="store_false", help="plain tf.function, no XLA")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="TF intra- and inter-op threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = bench_update(obs_dim=args.obs_dim, act_dim=args.act_dim, batch=args.batch, hidden=tuple(args.hidden),
                          cg_iters=args.cg_iters, damping=args.damping, critic_epochs=args.critic_epochs,
                          critic_batch=args.critic_batch, fisher_subsample=args.fisher_subsample,
                          jit_compile=args.jit_compile, repeats=args.repeats, warmup=args.warmup,
                          fisher_product=args.fisher_product, max_kl=args.max_kl, activation=args.activation,
                          threads=args.threads, seed=args.seed)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
