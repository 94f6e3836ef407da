"""Rollout workers in local subprocesses (``vector_env: workers``): the Ray backend's shape on one machine,
without Ray.

``vector_env: async`` (:class:`~trpo_tf.vector.BlockVectorEnv`) exchanges one message per worker per *step*:
the main process acts for every env, so each vector step waits for a pipe round trip and for the slowest
block. On these 2-core VMs that costs about as much as the physics of a 4-env Hopper block (docs/benchmarks.md).
Here each worker owns a block of envs *and* a numpy copy of the actor (:class:`~trpo_tf.acting.NumpyActor`)
and runs a whole segment on its own: per iteration one message out (the actor's weights and normalizer
statistics, a few KB) and one back (its block's :class:`~trpo_tf.rollout.RolloutBatch`), while the main
process steps block 0 itself.

Env ``i`` of the layout resets on ``seed + i`` and draws its action noise from stream ``i``
(:func:`~trpo_tf.rollout.env_noise_streams`), as in one in-process vector env, so the batch equals the
``sync`` one for deterministic simulators (tests/test_process_rollout.py): choosing this backend changes the
speed, not the run.

Workers start by ``forkserver`` (no TensorFlow in them; the env factory must be picklable, as
``robots.EnvFactory`` is). A worker that raises hands its exception to the main process, chained to the
worker's traceback (:class:`RolloutWorkerError`); a worker that dies ends the collection with that error,
naming its exit code. A crashed run resumes from its last checkpoint like any other.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from trpo_tf.acting import NumpyActor
from trpo_tf.rollout import RolloutBatch, RolloutCollector, block_sizes, concat_batches, make_vector_env
from trpo_tf.vector import random_steps, stop_workers


class RolloutWorkerError(RuntimeError):
    """A rollout worker process failed: its traceback, or how it died."""


def _worker(conn: Any, env_fn: Callable[[], gym.Env], n_envs: int, first_env: int, layout_envs: int,
            seed: int, params: dict[str, Any]) -> None:
    """One worker: build its block, then serve ``segment`` / ``random`` requests until ``close``."""
    collector = None
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    try:
        collector = RolloutCollector(make_vector_env(env_fn, n_envs, "sync"), NumpyActor(params=params), seed,
                                     first_env, layout_envs)
        conn.send(("ready", {"pid": os.getpid(), "tensorflow_loaded": "tensorflow" in sys.modules}))
        while True:
            command, data = conn.recv()
            if command == "segment":
                params, n_steps, noise_seed = data
                start = time.perf_counter()
                collector.actor.load(params)
                batch = collector.segment(n_steps, noise_seed)
                conn.send(("batch", (batch, time.perf_counter() - start)))
            elif command == "random":
                conn.send(("seconds", random_steps(collector.envs, *data)))
            elif command == "close":
                break
    except EOFError:  # the main process went away
        pass
    except BaseException as exc:  # noqa: BLE001 — every failure goes to the main process
        try:
            pickle.dumps(exc)
        except Exception:  # noqa: BLE001 — an exception that cannot travel: its text does
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        try:
            conn.send(("error", (exc, traceback.format_exc())))
        except (BrokenPipeError, OSError):
            pass
    finally:
        if collector is not None:
            collector.close()
        conn.close()


class ProcessRolloutCollector:
    """``n_envs`` envs in blocks: block 0 in this process, each other block in a worker process stepping with
    its own copy of ``actor`` (the learner's numpy actor, re-sent at the start of every :meth:`collect`).
    :class:`~trpo_tf.rollout.RolloutCollector`'s interface: ``collect``, ``close``, plus ``last_timing``.

    ``n_workers`` counts the blocks, this process's included (0 = one per CPU core, at most ``n_envs``).
    """

    def __init__(self, env_fn: Callable[[], gym.Env], n_envs: int, actor: NumpyActor, seed: int,
                 n_workers: int = 0, context: str = "forkserver") -> None:
        self.actor = actor
        self.blocks = block_sizes(n_envs, min(n_workers or os.cpu_count() or 1, n_envs))
        first_envs = [int(x) for x in np.cumsum([0] + self.blocks[:-1])]
        self.conns: list[Any] = []
        self.processes: list[Any] = []
        self.infos: list[dict[str, Any]] = []
        self.last_timing: dict[str, float] = {}
        self.local: RolloutCollector | None = None
        ctx = mp.get_context(context)
        try:
            for size, first in zip(self.blocks[1:], first_envs[1:]):
                parent, child = ctx.Pipe()
                process = ctx.Process(target=_worker, daemon=True, name=f"trpo-rollout-{first}",
                                      args=(child, env_fn, size, first, n_envs, seed, actor.params()))
                process.start()
                child.close()
                self.conns.append(parent)
                self.processes.append(process)
            self.local = RolloutCollector(make_vector_env(env_fn, self.blocks[0], "sync"), actor, seed, 0, n_envs)
            self.infos = [self._receive(w, "ready") for w in range(len(self.conns))]
        except BaseException:
            self.close()
            raise

    def _died(self, w: int) -> RolloutWorkerError:
        process = self.processes[w]
        process.join(timeout=5)
        return RolloutWorkerError(f"rollout worker {w + 1} (pid {process.pid}) died with exit code "
                                  f"{process.exitcode}")

    def _send(self, w: int, message: tuple[str, Any]) -> None:
        try:
            self.conns[w].send(message)
        except (BrokenPipeError, OSError):
            raise self._died(w) from None

    def _receive(self, w: int, expected: str) -> Any:
        """Worker ``w``'s answer; its exception (chained to its traceback) or its death raised here."""
        try:
            kind, payload = self.conns[w].recv()
        except (EOFError, OSError):
            raise self._died(w) from None
        if kind == "error":
            exc, remote_tb = payload
            raise exc from RolloutWorkerError(f"in rollout worker {w + 1} (pid {self.processes[w].pid}):\n"
                                              f"{remote_tb}")
        if kind != expected:
            raise RolloutWorkerError(f"rollout worker {w + 1} answered {kind!r}, expected {expected!r}")
        return payload

    def collect(self, n_steps: int, rng: np.random.Generator) -> RolloutBatch:
        """``n_steps`` steps of every env under the actor's current weights (one draw from ``rng``, as
        :meth:`RolloutCollector.collect` makes it)."""
        noise_seed = int(rng.integers(2**63))
        start = time.perf_counter()
        params = self.actor.params()
        for w in range(len(self.conns)):
            self._send(w, ("segment", (params, n_steps, noise_seed)))
        parts = [self.local.segment(n_steps, noise_seed)]
        local_s = time.perf_counter() - start
        worker_s = [0.0]
        for w in range(len(self.conns)):
            batch, seconds = self._receive(w, "batch")
            parts.append(batch)
            worker_s.append(seconds)
        wall = time.perf_counter() - start
        self.last_timing = {"wall_s": wall, "local_busy_s": local_s, "worker_busy_s": max(worker_s),
                            "overhead_s": wall - max(local_s, *worker_s)}
        return concat_batches(parts)

    def random_steps_per_s(self, n_steps: int, seed: int = 0) -> float:
        """Env steps/s of every block stepping uniformly random actions at once (the simulators' rate on this
        layout, for benchmarks). Leaves the envs mid-episode: use a collector made for the measurement."""
        for w in range(len(self.conns)):
            self._send(w, ("random", (n_steps, seed + w + 1)))
        start = time.perf_counter()
        random_steps(self.local.envs, n_steps, seed)
        for w in range(len(self.conns)):
            self._receive(w, "seconds")
        return n_steps * sum(self.blocks) / (time.perf_counter() - start)

    def close(self) -> None:
        """Stop the workers (a graceful ``close``, then terminate after 5 s) and close block 0."""
        stop_workers(self.conns, self.processes)
        self.conns, self.processes = [], []
        if self.local is not None:
            self.local.close()
            self.local = None
