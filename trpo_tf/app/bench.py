"""Speed benchmarks of the learner: one full update (policy step + critic fit) and end-to-end training.

Both return JSON-able dicts with the settings and the machine (cores, load average, versions), so a figure
is never quoted without its conditions. Medians over repeats; the machine is shared, so compare ratios
measured in one session (``docs/benchmarks.md``).

    from trpo_tf.app.bench import bench_update, bench_train
    bench_update(cg_iters=10, critic_epochs=5)["update_ms_median"]
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import tempfile
import time
from typing import Any, Callable, Iterator, Sequence

import gymnasium as gym
import numpy as np
import tensorflow as tf

from trpo_tf.critic import CriticTrainer
from trpo_tf.models import build_models
from trpo_tf.trpo import FISHER_PRODUCTS, TRPOPolicyStep, TRPOStepSettings
from trpo_tf.update import TRPOUpdate


def machine_info() -> dict[str, Any]:
    """Cores, load average, Python and TensorFlow versions and thread settings: the conditions of a figure."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu_count": os.cpu_count(),
        "load_avg_1_5_15": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tensorflow": tf.__version__,
        "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _median_ms(seconds: list[float]) -> float:
    return round(1000.0 * statistics.median(seconds), 3)


def _synthetic_batch(actor: tf.keras.Model, obs_dim: int, act_dim: int, batch: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random observations, actions sampled from the actor, advantages correlated with the actions
    (so the surrogate gradient points somewhere and the line search accepts, as in training)."""
    obs = rng.standard_normal((batch, obs_dim)).astype(np.float32)
    dist = actor(tf.constant(obs))
    actions = dist.sample(seed=int(rng.integers(2**31 - 1))).numpy().astype(np.float32)
    direction = rng.standard_normal(act_dim).astype(np.float32)
    advantages = (actions @ direction + 0.5 * rng.standard_normal(batch)).astype(np.float32)
    returns = (obs.sum(axis=1) + rng.standard_normal(batch)).astype(np.float32)
    return obs, actions, advantages, returns


def bench_update(obs_dim: int = 11, act_dim: int = 3, batch: int = 2048, hidden: Sequence[int] = (64, 64),
                 cg_iters: int = 10, damping: float = 0.1, critic_epochs: int = 5, critic_batch: int = 128,
                 fisher_subsample: int = 1, jit_compile: bool = True, repeats: int = 20, warmup: int = 3,
                 fisher_product: str = "gauss-newton", max_kl: float = 0.01, activation: str = "tanh",
                 threads: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Time ``repeats`` full updates (policy step + critic fit) on one synthetic batch.

    The actor, critic and Adam state are restored before every run, so each run does the same work
    (including the line search's number of backtracks). ``threads`` sets TF's intra- and inter-op
    thread pools (only possible before TF's first op in the process; ignored with a note otherwise).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    if fisher_product not in FISHER_PRODUCTS:
        raise ValueError(f"fisher_product must be one of {FISHER_PRODUCTS}, got {fisher_product!r}")
    notes: list[str] = []
    if threads is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            notes.append("threads not applied: TensorFlow was already initialized in this process")
    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    obs_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, (act_dim,), np.float32)
    actor, critic = build_models(obs_space, act_space, list(hidden), activation)
    settings = TRPOStepSettings(max_kl=max_kl, cg_iters=cg_iters, cg_damping=damping,
                                fisher_subsample=fisher_subsample, fisher_product=fisher_product)
    step = TRPOPolicyStep(actor, settings, jit_compile=jit_compile)
    trainer = CriticTrainer(critic, 1e-3, critic_epochs, critic_batch, jit_compile=jit_compile)
    obs, actions, advantages, returns = _synthetic_batch(actor, obs_dim, act_dim, batch, rng)

    state = [v for v in actor.variables] + [v for v in critic.variables] + list(trainer.optimizer.variables)
    saved = [v.numpy() for v in state]

    def restore() -> None:
        for variable, value in zip(state, saved):
            variable.assign(value)

    update = TRPOUpdate(step, trainer, jit_compile=jit_compile)  # what training runs (trpo_tf/algorithm.py)
    fused = TRPOUpdate(step, trainer, jit_compile=jit_compile, parallel=False)
    policy_s: list[float] = []
    critic_s: list[float] = []
    update_s: list[float] = []
    fused_s: list[float] = []
    cpu_s: list[float] = []
    diagnostics: dict[str, Any] = {}
    for i in range(warmup + repeats):  # the three ways interleaved: the machine's load hits all alike
        restore()
        t0 = time.perf_counter()
        diagnostics = step(obs, actions, advantages, fisher_seed=0)  # Python floats: the work is finished
        t1 = time.perf_counter()
        trainer.fit(obs, returns, seed=0)
        t2 = time.perf_counter()
        restore()
        c0, t3 = time.process_time(), time.perf_counter()
        update(obs, actions, advantages, returns, critic_seed=0, fisher_seed=0)
        t4, c1 = time.perf_counter(), time.process_time()
        restore()
        t5 = time.perf_counter()
        if update.parallel:
            fused(obs, actions, advantages, returns, critic_seed=0, fisher_seed=0)
        t6 = time.perf_counter()
        if i >= warmup:
            policy_s.append(t1 - t0)
            critic_s.append(t2 - t1)
            update_s.append(t4 - t3)
            fused_s.append(t6 - t5 if update.parallel else t4 - t3)
            cpu_s.append(c1 - c0)
    restore()
    updates = [p + c for p, c in zip(policy_s, critic_s)]
    return {
        "update_ms_median": _median_ms(update_s),  # the update as trained (TRPOUpdate, parallel with 2+ CPUs)
        "update_ms_min": round(1000.0 * min(update_s), 3),
        "update_cpu_ms_median": _median_ms(cpu_s),  # CPU time of this process, all threads
        "update_parallel": update.parallel,  # policy step and critic fit side by side (trpo_tf/update.py)
        "fused_ms_median": _median_ms(fused_s),  # both in ONE compiled call, the one-CPU way
        "separate_calls_ms_median": _median_ms(updates),
        "policy_step_ms_median": _median_ms(policy_s),
        "critic_ms_median": _median_ms(critic_s),
        "accepted": diagnostics.get("accepted"),
        "backtracks": diagnostics.get("backtracks"),
        "kl": diagnostics.get("kl"),
        "settings": {
            "obs_dim": obs_dim, "act_dim": act_dim, "batch": batch, "hidden": list(hidden),
            "activation": activation, "cg_iters": cg_iters, "damping": damping, "max_kl": max_kl,
            "critic_epochs": critic_epochs, "critic_batch": critic_batch, "fisher_subsample": fisher_subsample,
            "fisher_product": fisher_product, "jit_compile": jit_compile, "repeats": repeats, "warmup": warmup,
            "threads": threads,
        },
        "notes": notes,
        "machine": machine_info(),
    }


@contextlib.contextmanager
def random_stepper(gym_id: str, n_envs: int, mode: str, kwargs: dict[str, Any] | None = None, seed: int = 0,
                   n_workers: int = 0) -> Iterator[Callable[[int], float]]:
    """The vector env the trainer would build, warmed up, as ``step(vector_steps) -> seconds``: that many steps of
    every env with uniformly random actions, timed by the stepping code itself. For ``workers``: every block at
    once, each in its own process (an untrained actor only builds the collector)."""
    import robots  # local: keeps `bench_update` free of robot imports
    from trpo_tf.rollout import make_vector_env
    from trpo_tf.vector import random_steps

    factory = robots.EnvFactory(gym_id, dict(kwargs or {}))
    if mode == "workers":
        from trpo_tf.acting import NumpyActor
        from trpo_tf.process_rollout import ProcessRolloutCollector

        probe = factory()
        actor, _ = build_models(probe.observation_space, probe.action_space, [8])
        probe.close()
        collector = ProcessRolloutCollector(factory, n_envs, NumpyActor(actor), seed, n_workers)
        try:
            collector.random_steps_per_s(50, seed)  # warm-up
            yield lambda vector_steps: vector_steps * n_envs / collector.random_steps_per_s(vector_steps, seed)
        finally:
            collector.close()
        return
    envs = make_vector_env(factory, n_envs, mode, n_workers)
    try:
        envs.reset(seed=seed)
        random_steps(envs, 50, seed)  # warm-up
        yield lambda vector_steps: random_steps(envs, vector_steps, seed)
    finally:
        envs.close()


def bench_vector_env(gym_id: str, n_envs: int, mode: str, kwargs: dict[str, Any] | None = None,
                     steps: int = 20_000, seed: int = 0) -> float:
    """Env-steps/s of the vector env the trainer would build, stepping uniformly random actions
    (:func:`random_stepper`)."""
    vector_steps = max(1, steps // n_envs)
    with random_stepper(gym_id, n_envs, mode, kwargs, seed) as step:
        return vector_steps * n_envs / step(vector_steps)


def bench_train(task: str = "hopper", steps: int = 100_000, overrides: dict[str, Any] | None = None,
                raw_env_steps: int = 20_000, seed: int = 0) -> dict[str, Any]:
    """End-to-end training env-steps/s with the task's preset (plus ``overrides``), in a temporary run
    directory, next to the raw random-action rate of the same vector env (same n_envs and mode), measured
    just before and just after the run (``raw_vector_env_steps_per_s`` is their mean, ``fraction_of_raw``
    the training rates over it: the VM's speed drifts by tens of percent within minutes here).

    ``steps_per_s`` counts everything from ``train()`` on: collection, GAE, policy step, critic fit, metrics and
    checkpoints. The first iteration (the rest of tracing and XLA compilation) is reported separately, and
    ``setup_s`` is building the trainer before it (models, env probe, normalizer warm-up; the compilation starts
    there in the background), which ``steps_per_s`` leaves out as SB3's ``learn()`` timing leaves out its model.
    Phases: ``update_s`` is the policy step + critic fit, or the policy step alone with ``overlap_critic`` (then
    ``critic_wait_s`` is the loop's wait for the critic fit that ran beside the next collection);
    ``process_cpu_s``: CPU seconds of this process (all threads) over the run, its workers' excluded.
    """
    import robots
    from trpo_tf.app.training import config_for_task, make_trainer
    from trpo_tf.monitor import read_metrics

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    config = config_for_task(task, {"total_steps": steps, "seed": seed, "eval_episodes": 0, **(overrides or {})})
    resolved = robots.resolve_task(task)
    gym_id, kwargs = resolved.gym_id, {**resolved.env_kwargs, **config.env_kwargs}

    def raw_rate() -> float:
        return (bench_vector_env(gym_id, config.n_envs, config.vector_env, kwargs, raw_env_steps, seed)
                if raw_env_steps and config.vector_env != "ray" else float("nan"))

    raw_before = raw_rate()  # before and after the run: the VM's speed drifts within minutes
    with tempfile.TemporaryDirectory(prefix="trpo-bench-") as tmp:
        setup_start = time.perf_counter()
        trainer = make_trainer(config, os.path.join(tmp, "run"), progress=False)
        start, cpu_start = time.perf_counter(), time.process_time()
        trainer.train()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        rows = read_metrics(trainer.run.metrics)
    first_s = float(rows[0]["time_s"]) if rows else float("nan")
    later = rows[1:]
    per_iter = {k: statistics.median(float(r[k]) for r in later) if later else float("nan")
                for k in ("collect_s", "acting_s", "env_s", "policy_s", "gae_s", "update_s", "normalizer_s",
                          "critic_wait_s")}
    phases = {k: round(v / max(len(rows), 1), 4) for k, v in trainer.phase_seconds.items()}  # per iteration
    steady_steps = sum(config.batch_size for _ in later)
    # Iterations 2…N by the loop's own clock: env start-up/shutdown (subprocess imports) is not steady state.
    steady_s = float(rows[-1]["time_s"]) - first_s if rows else float("nan")
    timing = trainer.collector_timing[1:]  # Ray / workers: broadcast + gather per iteration, past the first
    mode = config.vector_env  # the keys name the backend: ray_… or workers_…
    ray = {} if not timing else {
        f"{mode}_overhead_ms_median": round(1000.0 * statistics.median(t["overhead_s"] for t in timing), 2),
        f"{mode}_worker_busy_s_median": round(statistics.median(t["worker_busy_s"] for t in timing), 4)}
    raw_after = raw_rate()
    raw = (raw_before + raw_after) / 2.0
    overall = len(rows) * config.batch_size / wall if rows else float("nan")
    steady = steady_steps / steady_s if later and steady_s > 0 else float("nan")
    return {
        "task": task,
        "gym_id": gym_id,
        "env_steps": int(rows[-1]["env_steps"]) if rows else 0,
        "wall_s": round(wall, 2),
        "process_cpu_s": round(cpu, 2),
        "steps_per_s": round(overall, 1),
        "steady_steps_per_s": round(steady, 1),
        "setup_s": round(start - setup_start, 2),
        "first_iteration_s": round(first_s, 2),
        "startup_and_shutdown_s": round(wall - float(rows[-1]["time_s"]), 2) if rows else float("nan"),
        "median_iteration_s": {**{k: round(v, 4) for k, v in per_iter.items()}, **phases},
        "raw_vector_env_steps_per_s": round(raw, 1),  # the mean of the rates measured before and after the run
        "raw_before_after_steps_per_s": [round(raw_before, 1), round(raw_after, 1)],
        "fraction_of_raw": {"overall": round(overall / raw, 3), "steady": round(steady / raw, 3)},
        **ray,
        "last_episode_return_mean": float(rows[-1]["episode_return_mean"]) if rows else float("nan"),
        "settings": {k: v for k, v in config.to_dict().items() if k != "env_kwargs"},
        "machine": machine_info(),
    }


def vector_env_overrides(mode: str) -> dict[str, Any]:
    """Config overrides for a ``--vector-env`` mode: ``sync``, ``async``, ``workers``, ``ray`` or ``ray:K`` (K
    workers)."""
    name, _, workers = mode.partition(":")
    if name not in ("sync", "async", "workers", "ray") or (workers and (name != "ray" or not workers.isdigit())):
        raise ValueError(f"vector env mode must be sync, async, workers, ray or ray:K, got {mode!r}")
    return {"vector_env": name, **({"ray_workers": int(workers)} if workers else {})}


def bench_vector_envs(task: str, modes: Sequence[str], steps: int, rounds: int = 1,
                      overrides: dict[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
    """:func:`bench_train` for each vector-env mode, interleaved over ``rounds`` (A B C A B C…) so machine
    load drifts hit every mode alike; medians per mode, and each mode's steady steps/s relative to the first."""
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for _ in range(rounds):
        for mode in modes:
            runs[mode].append(bench_train(task, steps, {**(overrides or {}), **vector_env_overrides(mode)},
                                          raw_env_steps=0, seed=seed))
    table = {}
    for mode, results in runs.items():
        row = {"steady_steps_per_s": statistics.median(r["steady_steps_per_s"] for r in results),
               "steps_per_s": statistics.median(r["steps_per_s"] for r in results),
               **{f"{k}_median": statistics.median(r["median_iteration_s"][k] for r in results)
                  for k in ("collect_s", "policy_s")}}  # policy_s: the whole update (critic fit included)
        for key in results[0]:  # the backend's timing (ray_… / workers_…), see bench_train
            if key.endswith(("_overhead_ms_median", "_worker_busy_s_median")):
                row[key] = statistics.median(r[key] for r in results)
        table[mode] = {k: round(v, 4) for k, v in row.items()}
    first = table[modes[0]]["steady_steps_per_s"]
    for row in table.values():
        row["relative_to_first"] = round(row["steady_steps_per_s"] / first, 3)
    return {"task": task, "steps": steps, "rounds": rounds, "modes": table, "runs": runs, "machine": machine_info()}


__all__ = ["bench_update", "bench_train", "bench_vector_env", "bench_vector_envs", "machine_info", "random_stepper"]
