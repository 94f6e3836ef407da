"""Rollout workers on a Ray cluster: a vector backend for machines (and clusters) with more cores than one
process can use.

Each worker is a Ray actor stepping a block of envs with the numpy acting path (:mod:`trpo_tf.acting`;
no TensorFlow in workers) through the same :class:`~trpo_tf.rollout.RolloutCollector` the in-process backend
uses. Per iteration the driver puts the actor's weights and normalizer statistics in the object store once
(``ray.put``), every worker runs a fixed-length segment on them, and the driver concatenates the segments
into one time-major :class:`~trpo_tf.rollout.RolloutBatch`. Env ``i`` of the global layout resets on
``seed + i`` and draws its action noise from its own stream, so a Ray batch equals the in-process one for
deterministic simulators (same seed, same workers × envs layout).

Faults: a worker whose process dies (or whose node goes away) is replaced by a new actor whose envs restart
on a seed derived from (seed, worker, restart count), and its segment is collected again with the same
weights and noise seed; the iteration goes on. A worker that *raises* re-raises the original exception on
the driver, chained to the worker's traceback.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import ray

from trpo_tf.acting import NumpyActor
from trpo_tf.config import ConfigError
from trpo_tf.rollout import RolloutBatch, RolloutCollector, block_sizes, concat_batches, make_vector_env

log = logging.getLogger("trpo_tf")

MAX_RESTARTS_PER_SEGMENT = 3
START_TIMEOUT_S = 300.0  # a worker that is not placed by then: the cluster lacks the CPUs asked for


class RolloutWorker:
    """One Ray actor: a block of ``n_envs`` envs (global indices ``first_env …``) and a numpy actor."""

    def start(self, env_fn: Callable[[], gym.Env], n_envs: int, first_env: int, seed: int,
              params: dict[str, Any], layout_envs: int = 0) -> dict[str, Any]:
        """Build the envs and reset them on ``seed + first_env + i``; returns :meth:`info`. ``layout_envs``:
        the envs of all workers together (see :class:`~trpo_tf.rollout.RolloutCollector`)."""
        self.actor = NumpyActor(params=params)
        self.collector = RolloutCollector(make_vector_env(env_fn, n_envs, "sync"), self.actor, seed, first_env,
                                          layout_envs)
        return self.info()

    def info(self) -> dict[str, Any]:
        """Where this worker runs, and a check that it stayed TensorFlow-free."""
        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(),
                "tensorflow_loaded": "tensorflow" in sys.modules}

    def segment(self, params: dict[str, Any], n_steps: int, noise_seed: int) -> tuple[RolloutBatch, float]:
        """``n_steps`` steps of every env under ``params``; returns the block's batch and its busy seconds."""
        start = time.perf_counter()
        self.actor.load(params)
        batch = self.collector.segment(n_steps, noise_seed)
        return batch, time.perf_counter() - start

    def close(self) -> None:
        self.collector.envs.close()


def plan_blocks(n_envs: int, workers: int = 0, envs_per_worker: int = 0, cpus_per_worker: float = 1.0) -> list[int]:
    """The envs of each worker (config keys ``ray_workers``, ``ray_envs_per_worker``; 0 = derive): given
    counts win; otherwise ``n_envs / envs_per_worker`` workers, or one per ``cpus_per_worker`` CPUs of the
    connected cluster (at most ``n_envs``)."""
    if not workers:
        cpus = ray.cluster_resources().get("CPU", 1.0)
        workers = n_envs // envs_per_worker if envs_per_worker else max(1, min(n_envs, int(cpus // cpus_per_worker)))
    return block_sizes(n_envs, workers)


_started_here = False  # this process started the Ray instance it is connected to (so it shuts it down)


def connect(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at ``address`` ("auto", "HOST:PORT", "ray://HOST:PORT"; else ``$RAY_ADDRESS``), or
    start a private local instance (``address="local"``: never a stale session left on this machine) with
    ``num_cpus`` CPUs (default: the machine's). No-op when already connected.

    An address that does not answer, or refuses us (Ray's token authentication: ``RAY_AUTH_TOKEN``), is a
    :class:`~trpo_tf.config.ConfigError` of one line, raised before anything is written.
    """
    global _started_here
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    if address == "local":
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                 logging_level=logging.WARNING)
        _started_here = True
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if host:  # fail in seconds, not after Ray's minutes of retries
        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot reach the Ray cluster at {address}: {exc}") from None
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except ConnectionError as exc:
        raise ConfigError(f"cannot connect to the Ray cluster at {address} ({str(exc).splitlines()[0]}); if the "
                          "cluster uses token authentication, set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN to its "
                          "token (docs/scaling.md)") from None


def disconnect() -> None:
    """Shut Ray down if :func:`connect` started it here; leave a joined cluster running."""
    global _started_here
    if _started_here and ray.is_initialized():
        ray.shutdown()
    _started_here = False


class RayRolloutCollector:
    """The Ray backend with :class:`~trpo_tf.rollout.RolloutCollector`'s interface (``collect``, ``close``).

    ``env_fn`` is a picklable callable returning one gymnasium env (it runs on the workers' nodes);
    ``blocks`` the number of envs of each worker; ``actor`` the driver's numpy actor, refreshed by the
    learner after each update and broadcast at the start of every :meth:`collect`.
    """

    def __init__(self, env_fn: Callable[[], gym.Env], blocks: Sequence[int], actor: NumpyActor, seed: int,
                 cpus_per_worker: float = 1.0, address: str | None = None) -> None:
        self.env_fn, self.blocks, self.actor, self.seed = env_fn, list(blocks), actor, seed
        self.first_envs = [int(x) for x in np.cumsum([0] + self.blocks[:-1])]
        connect(address, max(os.cpu_count() or 1, math.ceil(len(self.blocks) * cpus_per_worker)))
        self.remote_cls = ray.remote(num_cpus=cpus_per_worker, max_restarts=0)(RolloutWorker)
        self.restarts = [0] * len(self.blocks)
        self.workers: list[Any] = [None] * len(self.blocks)
        self.infos: list[dict[str, Any]] = [{}] * len(self.blocks)
        self.last_timing: dict[str, float] = {}
        try:
            params = ray.put(actor.params())
            starting = {self._start(w, seed, params): w for w in range(len(self.blocks))}
            for w, info in self._gather(starting, timeout=START_TIMEOUT_S).items():
                self.infos[w] = info
        except BaseException:
            self.close()
            raise
        for w, info in enumerate(self.infos):
            log.info("ray worker %d: %d envs, pid %d on node %s", w, self.blocks[w], info["pid"], info["node_id"])

    @classmethod
    def for_layout(cls, env_fn: Callable[[], gym.Env], n_envs: int, actor: NumpyActor, seed: int, workers: int = 0,
                   envs_per_worker: int = 0, cpus_per_worker: float = 1.0,
                   address: str | None = None) -> RayRolloutCollector:
        """Connect first, then size the layout with :func:`plan_blocks` (a count of 0 is read off the cluster)."""
        connect(address, max(os.cpu_count() or 1, math.ceil(workers * cpus_per_worker)))
        try:
            return cls(env_fn, plan_blocks(n_envs, workers, envs_per_worker, cpus_per_worker), actor, seed,
                       cpus_per_worker, address)
        except BaseException:
            disconnect()
            raise

    def _start(self, w: int, seed: int, params: Any) -> Any:
        """A new actor for worker ``w``; returns the ref of its ``start`` call."""
        self.workers[w] = self.remote_cls.remote()
        return self.workers[w].start.remote(self.env_fn, self.blocks[w], self.first_envs[w], seed, params,
                                            sum(self.blocks))

    def _restart(self, w: int, params: Any) -> None:
        """Replace dead worker ``w``: its envs restart fresh episodes on a seed derived from
        (seed, worker, restart count), as a resumed run starts fresh episodes."""
        self.restarts[w] += 1
        ray.kill(self.workers[w], no_restart=True)
        seed = int(np.random.SeedSequence(self.seed, spawn_key=(w, self.restarts[w])).generate_state(1)[0])
        self.infos[w] = self._gather({self._start(w, seed, params): w}, timeout=START_TIMEOUT_S)[w]
        log.warning("ray worker %d died; restarted as pid %d on node %s (restart %d)", w, self.infos[w]["pid"],
                    self.infos[w]["node_id"], self.restarts[w])

    def _gather(self, pending: dict[Any, int], timeout: float | None = None,
                retry: Callable[[int], Any] | None = None) -> dict[int, Any]:
        """Results of ``pending`` (ref → worker), as they finish. A dead worker's call is re-run through
        ``retry(w)`` (if given) up to :data:`MAX_RESTARTS_PER_SEGMENT` times; a raising worker re-raises its
        exception here, chained to the worker's traceback."""
        results: dict[int, Any] = {}
        failures: dict[int, int] = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=timeout)
            if not ready:
                raise ConfigError(f"{len(pending)} Ray worker(s) not started after {timeout:.0f} s: the cluster "
                                   f"has {ray.cluster_resources().get('CPU', 0):g} CPUs for {len(self.blocks)} "
                                   "workers; lower ray_workers or ray_cpus_per_worker, or add nodes")
            w = pending.pop(ready[0])
            try:
                results[w] = ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:  # the worker's code raised: that is the error
                raise (exc.cause if isinstance(exc.cause, BaseException) else exc) from exc
            except ray.exceptions.RayActorError:  # the process (or its node) died
                failures[w] = failures.get(w, 0) + 1
                if retry is None or failures[w] > MAX_RESTARTS_PER_SEGMENT:
                    raise
                pending[retry(w)] = w
        return results

    def collect(self, n_steps: int, rng: np.random.Generator) -> RolloutBatch:
        """One segment of ``n_steps`` from every worker, under the actor's current weights."""
        noise_seed = int(rng.integers(2**63))  # as RolloutCollector.collect draws it
        t0 = time.perf_counter()
        params = ray.put(self.actor.params())

        def run(w: int) -> Any:
            return self.workers[w].segment.remote(params, n_steps, noise_seed)

        def rerun(w: int) -> Any:
            self._restart(w, params)
            return run(w)

        results = self._gather({run(w): w for w in range(len(self.blocks))}, retry=rerun)
        wall = time.perf_counter() - t0
        busy = max(seconds for _, seconds in results.values())
        self.last_timing = {"wall_s": wall, "worker_busy_s": busy, "overhead_s": wall - busy}
        return concat_batches([results[w][0] for w in range(len(self.blocks))])

    def close(self) -> None:
        """Stop the workers (and the local Ray instance if this process started it)."""
        if not ray.is_initialized():
            return
        alive = [w for w in self.workers if w is not None]
        try:
            ray.wait([w.close.remote() for w in alive], num_returns=len(alive), timeout=10)
        finally:
            for w in alive:
                ray.kill(w, no_restart=True)
            self.workers = [None] * len(self.blocks)
            disconnect()
