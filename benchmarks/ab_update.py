"""Side-by-side (interleaved, one process, same batch) timing of update variants by CPU time and wall clock.

    .venv/bin/python benchmarks/ab_update.py                       # separate calls, fused, parallel
    .venv/bin/python benchmarks/ab_update.py --threads 1 --rounds 40

Variants: ``separate`` = ``TRPOPolicyStep`` then ``CriticTrainer.fit`` (two compiled calls), ``fused`` =
``TRPOUpdate(parallel=False)`` (one compiled call), ``parallel`` = ``TRPOUpdate(parallel=True)`` (the two calls
side by side on two threads). Weights and Adam state are restored before every call, so every call
does the same work; the script also checks that both variants land on bit-identical weights. Thread
settings can only be compared across processes (TF fixes them at start-up): run two copies at once with
different ``--threads`` so they share the machine's load. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="TF intra- and inter-op threads")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--cg-iters", type=int, default=10)
    parser.add_argument("--critic-epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2048)
    args = parser.parse_args(argv)

    import gymnasium as gym
    import numpy as np
    import tensorflow as tf

    if args.threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from trpo_tf.app.bench import _synthetic_batch, machine_info
    from trpo_tf.critic import CriticTrainer
    from trpo_tf.models import build_models
    from trpo_tf.trpo import TRPOPolicyStep, TRPOStepSettings, flatten
    from trpo_tf.update import TRPOUpdate

    tf.keras.utils.set_random_seed(0)
    actor, critic = build_models(gym.spaces.Box(-np.inf, np.inf, (11,), np.float32),
                                 gym.spaces.Box(-1.0, 1.0, (3,), np.float32), [64, 64])
    step = TRPOPolicyStep(actor, TRPOStepSettings(cg_iters=args.cg_iters))
    trainer = CriticTrainer(critic, 1e-3, args.critic_epochs, 128)
    fused_update = TRPOUpdate(step, trainer, parallel=False)
    parallel_update = TRPOUpdate(step, trainer, parallel=True)
    obs, actions, adv, returns = _synthetic_batch(actor, 11, 3, args.batch, np.random.default_rng(0))
    state = list(actor.variables) + list(critic.variables) + list(trainer.optimizer.variables)
    saved = [v.numpy() for v in state]

    def restore() -> None:
        for variable, value in zip(state, saved):
            variable.assign(value)

    def separate() -> None:
        step(obs, actions, adv, fisher_seed=0)
        trainer.fit(obs, returns, seed=0)

    def fused() -> None:
        fused_update(obs, actions, adv, returns, critic_seed=0, fisher_seed=0)

    def parallel() -> None:
        parallel_update(obs, actions, adv, returns, critic_seed=0, fisher_seed=0)

    variants = {"separate": separate, "fused": fused, "parallel": parallel}
    landed = {}
    for name, fn in variants.items():  # compile, warm up, and record where each lands
        for _ in range(3):
            restore()
            fn()
        landed[name] = flatten(list(actor.trainable_variables) + list(critic.trainable_variables)).numpy()
    wall = {k: [] for k in variants}
    cpu = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            restore()
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(time.process_time() - c0)
    out = {name: {"cpu_ms_median": round(1e3 * statistics.median(cpu[name]), 3),
                  "cpu_ms_min": round(1e3 * min(cpu[name]), 3),
                  "wall_ms_median": round(1e3 * statistics.median(wall[name]), 3),
                  "wall_ms_min": round(1e3 * min(wall[name]), 3)} for name in variants}
    out["bit_identical"] = all(bool(np.array_equal(landed["separate"], landed[k])) for k in ("fused", "parallel"))
    out["max_abs_diff"] = max(float(np.max(np.abs(landed["separate"] - landed[k]))) for k in ("fused", "parallel"))
    out["threads"] = args.threads
    out["machine"] = machine_info()
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
