"""A vector env that steps *blocks* of envs in parallel: the first block in this process, each other block
in a worker process, one message per worker per step.

gymnasium's ``AsyncVectorEnv`` runs one process per env and pays a pipe round trip per env per step; on a
2-core machine with 8 envs that overhead, not the physics, sets the pace. Here every block is a
``gymnasium.vector.SyncVectorEnv`` (same-step autoreset). The main process sends the workers their actions,
steps its own block meanwhile, then collects the workers' results: a worker's wake-up latency (large on
these VMs) hides behind real work instead of adding to every step.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode


def random_steps(envs: gym.vector.VectorEnv, n_steps: int, seed: int) -> float:
    """Seconds to step ``envs`` ``n_steps`` times with uniformly random actions (256 drawn with ``seed``, then
    cycled): the simulator's own rate, for benchmarks."""
    envs.action_space.seed(seed)
    actions = [envs.action_space.sample() for _ in range(256)]
    start = time.perf_counter()
    for t in range(n_steps):
        envs.step(actions[t % len(actions)])
    return time.perf_counter() - start


def slim_info(info: dict[str, Any]) -> dict[str, Any]:
    """Only what episode bookkeeping needs: the final observations and ``is_success`` of ended episodes."""
    out = {k: info[k] for k in ("final_obs", "_final_obs") if k in info}
    final = info.get("final_info")
    if isinstance(final, dict) and "is_success" in final:
        out["final_info"] = {k: final[k] for k in ("is_success", "_is_success") if k in final}
    return out


def _worker(conn, env_fns: list[Callable[[], gym.Env]]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    envs = gym.vector.SyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.SAME_STEP)
    try:
        while True:
            command, data = conn.recv()
            if command == "step":
                obs, rewards, terminated, truncated, info = envs.step(data)
                conn.send((obs, rewards, terminated, truncated, slim_info(info)))
            elif command == "reset":
                conn.send(envs.reset(seed=data))
            elif command == "close":
                break
    except EOFError:  # the parent went away
        pass
    finally:
        envs.close()
        conn.close()


def merge_infos(parts: Sequence[dict[str, Any]], sizes: Sequence[int]) -> dict[str, Any]:
    """Concatenate gymnasium vector-info dicts of consecutive env blocks (``_key`` masks default False)."""
    merged: dict[str, Any] = {}
    for key in set().union(*parts):
        values = [part.get(key) for part in parts]
        if any(isinstance(v, dict) for v in values):
            merged[key] = merge_infos([v if isinstance(v, dict) else {} for v in values], sizes)
            continue
        chunks = []
        for value, n in zip(values, sizes):
            if value is None:
                value = np.zeros(n, bool) if key.startswith("_") else np.full(n, None, object)
            chunks.append(np.asarray(value))
        if len({c.dtype for c in chunks}) > 1:
            chunks = [c.astype(object) for c in chunks]
        merged[key] = np.concatenate(chunks)
    return merged


class BlockVectorEnv(gym.vector.VectorEnv):
    """``len(env_fns)`` envs split into ``n_workers`` contiguous blocks: block 0 stepped in this process,
    blocks 1… in one subprocess each (so ``n_workers=2`` is one extra process for two cores).

    Step infos are slimmed to what the rollout collector reads (:func:`slim_info`).
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], n_workers: int, context: str = "forkserver") -> None:
        if not 1 <= n_workers <= len(env_fns):
            raise ValueError(f"n_workers must be in [1, {len(env_fns)}], got {n_workers}")
        probe = env_fns[0]()
        self.single_observation_space, self.single_action_space = probe.observation_space, probe.action_space
        self.metadata = dict(probe.metadata, autoreset_mode=AutoresetMode.SAME_STEP)
        probe.close()
        self.num_envs = len(env_fns)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        bounds = np.linspace(0, self.num_envs, n_workers + 1).round().astype(int)
        self.blocks = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        self.sizes = [b.stop - b.start for b in self.blocks]
        ctx = mp.get_context(context)
        self.local = gym.vector.SyncVectorEnv(list(env_fns[self.blocks[0]]), autoreset_mode=AutoresetMode.SAME_STEP)
        self.conns, self.processes = [], []
        for block in self.blocks[1:]:
            parent, child = ctx.Pipe()
            process = ctx.Process(target=_worker, args=(child, list(env_fns[block])), daemon=True)
            process.start()
            child.close()
            self.conns.append(parent)
            self.processes.append(process)
        self.closed = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        seeds = [None if seed is None else [seed + i for i in range(b.start, b.stop)] for b in self.blocks]
        for conn, block_seeds in zip(self.conns, seeds[1:]):
            conn.send(("reset", block_seeds))
        results = [self.local.reset(seed=seeds[0])] + [conn.recv() for conn in self.conns]
        return np.concatenate([r[0] for r in results]), merge_infos([r[1] for r in results], self.sizes)

    def step(self, actions: np.ndarray):
        for conn, block in zip(self.conns, self.blocks[1:]):
            conn.send(("step", actions[block]))
        obs, rewards, terminated, truncated, info = self.local.step(actions[self.blocks[0]])
        results = [(obs, rewards, terminated, truncated, slim_info(info))] + [conn.recv() for conn in self.conns]
        obs, rewards, terminated, truncated, infos = zip(*results)
        return (np.concatenate(obs), np.concatenate(rewards), np.concatenate(terminated),
                np.concatenate(truncated), merge_infos(infos, self.sizes))

    def close_extras(self, **kwargs: Any) -> None:
        if self.closed:
            return
        stop_workers(self.conns, self.processes)
        self.local.close()
        self.closed = True


def stop_workers(conns: Sequence[Any], processes: Sequence[Any], timeout: float = 5.0) -> None:
    """Ask each worker to ``close``, wait ``timeout`` s for it, terminate it if still alive; close the pipes."""
    for conn in conns:
        try:
            conn.send(("close", None))
        except (BrokenPipeError, OSError):
            pass
    for process in processes:
        process.join(timeout=timeout)
        if process.is_alive():
            process.terminate()
            process.join(timeout=timeout)
    for conn in conns:
        conn.close()
