"""Profile of one TRPO update by compiled piece, its FLOP count, and numpy's sgemm rate at the same shapes.

Each piece (an empty compiled call, a forward pass, the surrogate gradient, one Fisher-vector product,
one line-search try, the whole policy step, one critic minibatch step, the whole critic fit) is its own
XLA-compiled ``tf.function`` on the same synthetic batch; the pieces are timed round-robin (interleaved, so
a change in the machine's load hits all of them alike), by CPU time of this process
(``time.process_time``, all threads) and by wall clock. FLOPs are counted analytically (matmuls only,
2 per multiply-add; the elementwise work is ~1 % at 64×64) — see :func:`update_flops`.

    from trpo_tf.app.bench_profile import profile_update
    profile_update(cg_iters=10, critic_epochs=5)
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
import tensorflow as tf

from trpo_tf.critic import CriticTrainer
from trpo_tf.models import build_models
from trpo_tf.fisher import dense_chain, layer_jacobian_fvp
from trpo_tf.trpo import TRPOPolicyStep, TRPOStepSettings, flatten, mean_kl, unflatten


def mlp_macs(sizes: Sequence[int]) -> tuple[int, int]:
    """(multiply-adds of one forward pass per sample, those of the layers after the first) for layer sizes
    [in, h1, …, out]. A backward pass needs the second count again for the input gradients (the first
    layer's input, the observation, needs none) and the first for the weight gradients."""
    macs = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return sum(macs), sum(macs[1:])


def update_flops(obs_dim: int = 11, act_dim: int = 3, batch: int = 2048, hidden: Sequence[int] = (64, 64),
                 cg_iters: int = 10, line_search_tries: int = 1, critic_epochs: int = 5,
                 critic_batch: int = 128) -> dict[str, float]:
    """FLOPs (matmuls) of one update, by part, in MFLOP.

    forward F = 2·N·P (P multiply-adds per sample); backward B = 2·N·(P + P') (weight + input gradients).
    The Fisher product (trpo_tf/fisher.py) first records the forward pass and the per-sample Jacobians
    K_l = ∂o/∂y_l of the k head outputs in the hidden pre-activations before the last (a backward recursion
    with k columns: 2·N·k·Σ m_l·m_{l+1}); then each product is one dot per layer each way (h̃·[Ẇ; ḃ] and
    h̃ᵀ·δ: 2·N·P each) plus the k-wide contractions with the hidden layers (K_l, and W_o for the last:
    2·N·k·Σ m_l each way), so 4·N·(P + k·Σ m_l); CG does ``cg_iters`` products (xᵀFx reuses CG's
    residual). A line-search try evaluates the surrogate and the KL on one forward pass. The critic: a
    forward + backward per minibatch sample, and one full-batch forward before and after.
    """
    n = batch
    p, p_rest = mlp_macs([obs_dim, *hidden, act_dim])
    forward = 2.0 * n * p
    backward = 2.0 * n * (p + p_rest)
    fisher_product = 4.0 * n * (p + act_dim * sum(hidden))  # J·v + Jᵀ·u from the layer Jacobians
    jacobians = 2.0 * n * act_dim * sum(a * b for a, b in zip(hidden[:-1], hidden[1:]))
    pc, pc_rest = mlp_macs([obs_dim, *hidden, 1])
    minibatches = critic_epochs * (n // min(critic_batch, n))
    parts = {
        "old_policy_forward": forward,
        "surrogate_gradient": forward + backward,
        "fisher_setup": forward + jacobians,
        "fisher_products": cg_iters * fisher_product,
        "line_search": line_search_tries * forward,
        "critic_minibatches": minibatches * (2.0 * critic_batch * pc + 2.0 * critic_batch * (pc + pc_rest)),
        "critic_loss_before_after": 2 * 2.0 * n * pc,
    }
    out = {k: v / 1e6 for k, v in parts.items()}
    out["one_fisher_product"] = fisher_product / 1e6
    out["policy_step"] = sum(v for k, v in out.items() if not k.startswith(("critic", "one_")))
    out["critic_fit"] = out["critic_minibatches"] + out["critic_loss_before_after"]
    out["update"] = out["policy_step"] + out["critic_fit"]
    return out


_SGEMM = """
import json, sys, time
import numpy as np
batch, shapes, repeats = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
pairs = [(rng.standard_normal((batch, k), np.float32), rng.standard_normal((k, m), np.float32)) for k, m in shapes]
walls, cpus = [], []
for _ in range(6):
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        for a, b in pairs:
            a @ b
    walls.append(time.perf_counter() - w0)
    cpus.append(time.process_time() - c0)
print(json.dumps([min(walls[1:]), min(cpus[1:])]))
"""


def sgemm_rate(batch: int = 2048, shapes: Sequence[tuple[int, int]] = ((11, 64), (64, 64), (64, 3)),
               repeats: int = 200, threads: int | None = None) -> dict[str, float]:
    """numpy float32 matmul [batch, k] @ [k, m] over the MLP's layer shapes, GFLOP/s by wall clock and by CPU
    time, in a fresh process (OpenBLAS's thread count is fixed at import: ``threads`` sets
    OPENBLAS_NUM_THREADS, None keeps its default, one per core)."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    if threads is not None:
        env["OPENBLAS_NUM_THREADS"] = str(threads)
    out = subprocess.run([sys.executable, "-c", _SGEMM, json.dumps([batch, [list(s) for s in shapes], repeats])],
                         env=env, capture_output=True, text=True, check=True).stdout
    wall, cpu = json.loads(out)
    flops = repeats * sum(2.0 * batch * k * m for k, m in shapes)
    return {"gflops_wall": round(flops / wall / 1e9, 1), "gflops_cpu": round(flops / max(cpu, 1e-9) / 1e9, 1)}


def _interleaved(pieces: dict[str, Callable[[], Any]], rounds: int, inner: dict[str, int]) -> dict[str, dict]:
    """Median wall and CPU ms per call of each piece, timed round-robin ``rounds`` times."""
    wall: dict[str, list[float]] = {k: [] for k in pieces}
    cpu: dict[str, list[float]] = {k: [] for k in pieces}
    for fn in pieces.values():  # compile + warm up
        fn()
        fn()
    for _ in range(rounds):
        for name, fn in pieces.items():
            k = inner.get(name, 1)
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(k):
                fn()
            wall[name].append((time.perf_counter() - w0) / k)
            cpu[name].append((time.process_time() - c0) / k)
    return {name: {"wall_ms": round(1e3 * statistics.median(wall[name]), 3),
                   "cpu_ms": round(1e3 * statistics.median(cpu[name]), 3)} for name in pieces}


def _per_ms(mflop: float, ms: float) -> float:
    """MFLOP per ms (= GFLOP/s); NaN when the time is a difference of noisy timings that came out <= 0."""
    return round(mflop / ms, 1) if ms > 0 else float("nan")


def profile_update(obs_dim: int = 11, act_dim: int = 3, batch: int = 2048, hidden: Sequence[int] = (64, 64),
                   cg_iters: int = 10, critic_epochs: int = 5, critic_batch: int = 128, rounds: int = 15,
                   seed: int = 0) -> dict[str, Any]:
    """Time the compiled pieces of one update (see the module docstring); returns a JSON-able dict."""
    from trpo_tf.app.bench import _synthetic_batch, machine_info

    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    actor, critic = build_models(gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32),
                                 gym.spaces.Box(-1.0, 1.0, (act_dim,), np.float32), list(hidden))
    step = TRPOPolicyStep(actor, TRPOStepSettings(cg_iters=cg_iters))
    trainer = CriticTrainer(critic, 1e-3, critic_epochs, critic_batch)
    one_epoch = CriticTrainer(critic, 1e-3, 1, critic_batch)
    obs_np, act_np, adv_np, ret_np = _synthetic_batch(actor, obs_dim, act_dim, batch, rng)
    obs, actions, adv = tf.constant(obs_np), tf.constant(act_np), tf.constant(adv_np)
    state = list(actor.variables) + list(critic.variables) + list(trainer.optimizer.variables) \
        + list(one_epoch.optimizer.variables)
    saved = [v.numpy() for v in state]
    fixed = [v.value for v in actor.non_trainable_variables]

    def policy(p, x):
        return actor.stateless_call(p, fixed, x)[0]

    def params():
        return [tf.identity(v.value) for v in actor.trainable_variables]

    chain = dense_chain(actor)

    jit = tf.function(jit_compile=True)

    @jit
    def empty(x):
        return x[0, 0]

    @jit
    def forward(x):
        return tf.reduce_mean(policy(params(), x).log_prob(actions))

    @jit
    def gradient(x):
        p = params()
        with tf.GradientTape() as tape:
            tape.watch(p)
            loss = tf.reduce_mean(tf.exp(policy(p, x).log_prob(actions)) * adv)
        return flatten(tape.gradient(loss, p))

    def products(n: int):
        @jit
        def run(x):
            p = params()
            fvp = layer_jacobian_fvp(actor, chain, p, x, 0.1)  # what the step runs (trpo_tf/fisher.py)
            v0 = tf.ones_like(flatten(p))
            return tf.while_loop(lambda i, v: i < n, lambda i, v: (i + 1, fvp(v) * 1e-3), (0, v0))[1]
        return run

    one_product, many_products = products(1), products(1 + cg_iters)

    @jit
    def line_search_try(x):
        p = params()
        old = policy([tf.stop_gradient(t) for t in p], x)
        candidate = unflatten(flatten(p) * 1.001, p)
        return tf.reduce_mean(tf.exp(policy(candidate, x).log_prob(actions)) * adv), \
            mean_kl(policy, candidate, x, old)

    def restore():
        for variable, value in zip(state, saved):
            variable.assign(value)

    def policy_step():
        restore()
        step(obs_np, act_np, adv_np, fisher_seed=0)

    def critic_fit():
        restore()
        trainer.fit(obs_np, ret_np, seed=0)

    def critic_one_epoch():
        restore()
        one_epoch.fit(obs_np, ret_np, seed=0)

    pieces = {"empty_compiled_call": lambda: empty(obs).numpy(), "restore_weights": restore,
              "forward_log_prob": lambda: forward(obs).numpy(), "surrogate_gradient": lambda: gradient(obs).numpy(),
              "fvp_x1": lambda: one_product(obs).numpy(), f"fvp_x{1 + cg_iters}": lambda: many_products(obs).numpy(),
              "line_search_try": lambda: [t.numpy() for t in line_search_try(obs)],
              "policy_step+restore": policy_step, "critic_fit+restore": critic_fit,
              "critic_1_epoch+restore": critic_one_epoch}
    times = _interleaved(pieces, rounds, {"empty_compiled_call": 20, "restore_weights": 5, "forward_log_prob": 5})
    restore()
    diagnostics = step(obs_np, act_np, adv_np, fisher_seed=0)
    restore()

    def ms(name: str, key: str) -> float:
        return times[name][key]

    derived = {}
    for key in ("wall_ms", "cpu_ms"):
        per_product = (ms(f"fvp_x{1 + cg_iters}", key) - ms("fvp_x1", key)) / cg_iters
        per_epoch = (ms("critic_fit+restore", key) - ms("critic_1_epoch+restore", key)) / max(critic_epochs - 1, 1)
        derived[key] = {
            "fisher_product": round(per_product, 3),
            "policy_step": round(ms("policy_step+restore", key) - ms("restore_weights", key), 3),
            "critic_fit": round(ms("critic_fit+restore", key) - ms("restore_weights", key), 3),
            "critic_epoch": round(per_epoch, 3),
            "critic_minibatch_step": round(per_epoch / (batch // critic_batch), 4),
        }
        derived[key]["update"] = round(derived[key]["policy_step"] + derived[key]["critic_fit"], 3)
    flops = update_flops(obs_dim, act_dim, batch, hidden, cg_iters, int(diagnostics["backtracks"]) + 1,
                         critic_epochs, critic_batch)
    shapes = list(zip([obs_dim, *hidden], [*hidden, act_dim]))
    rate = {"default_threads": sgemm_rate(batch, shapes), "one_thread": sgemm_rate(batch, shapes, threads=1)}
    best = {k: max(r[k] for r in rate.values()) for k in ("gflops_wall", "gflops_cpu")}
    achieved = {key: _per_ms(flops["update"], derived[key]["update"]) for key in ("wall_ms", "cpu_ms")}  # MFLOP/ms
    return {
        "pieces_ms": times,
        "derived_ms": derived,
        "mflop": {k: round(v, 1) for k, v in flops.items()},
        "achieved_gflops": {"update_by_wall": achieved["wall_ms"], "update_by_cpu": achieved["cpu_ms"],
                            "fisher_product_by_cpu": _per_ms(flops["one_fisher_product"],
                                                                    derived["cpu_ms"]["fisher_product"])},
        "numpy_sgemm_gflops": rate,
        "floor_ms_at_best_sgemm_rate": {"wall": round(flops["update"] / best["gflops_wall"], 2),
                                        "cpu": round(flops["update"] / best["gflops_cpu"], 2)},
        "line_search_tries": int(diagnostics["backtracks"]) + 1,
        "settings": {"obs_dim": obs_dim, "act_dim": act_dim, "batch": batch, "hidden": list(hidden),
                     "cg_iters": cg_iters, "critic_epochs": critic_epochs, "critic_batch": critic_batch,
                     "rounds": rounds},
        "machine": machine_info(),
    }


__all__ = ["profile_update", "update_flops", "sgemm_rate", "mlp_macs"]
