"""Time to skill: wall-clock seconds from the command's start until a policy first reaches a return.

Training runs as usual (the task's preset); every ``eval_every`` env steps a snapshot of the acting policy
(numpy weights, frozen normalizer) is evaluated deterministically on SEPARATE env copies — its steps are
not training steps — in a background thread, so training goes on meanwhile (``overlap=False`` evaluates
inline). The first evaluation whose mean return reaches ``target`` stops training; the reported time is
when that evaluation finished, counted from the process's start (interpreter, imports, env start-up and
XLA compilation included).

    trpo bench skill --task hopper --target 3000 --seed 0
"""

from __future__ import annotations

import copy
import os
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from trpo_tf.acting import NumpyActor
from trpo_tf.episodes import run_episodes


def process_start_time() -> float:
    """``time.time()`` at which this process started (Linux /proc), else the first call of this function."""
    try:
        with open(f"/proc/{os.getpid()}/stat", encoding="ascii") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return time.time() - uptime + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return _FALLBACK_START


_FALLBACK_START = time.time()


class SkillProbe:
    """The trainer's per-iteration callback: schedules evaluations, returns True once the target is met."""

    def __init__(self, make_env: Callable[[], gym.Env], target: float, eval_every: int, episodes: int,
                 seed: int, start: float, overlap: bool = True) -> None:
        self.make_env, self.target, self.eval_every = make_env, target, eval_every
        self.episodes, self.seed, self.start, self.overlap = episodes, seed, start, overlap
        self.next_eval = eval_every
        self.evaluations: list[dict[str, Any]] = []
        self.crossing: dict[str, Any] | None = None
        self.last_acting: NumpyActor | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _evaluate(self, policy: NumpyActor, env_steps: int) -> None:
        try:
            result = run_episodes(policy.deterministic, self.make_env, self.episodes, seed=self.seed)
            row = {"env_steps": env_steps, "mean_return": result["mean_return"],
                   "std_return": result["std_return"], "finished_s": round(time.time() - self.start, 2)}
            self.evaluations.append(row)
            if self.crossing is None and row["mean_return"] >= self.target:
                self.crossing = row
        except BaseException as exc:  # re-raised in the training thread by :meth:`wait`
            self._error = exc

    def wait(self) -> None:
        """Finish the evaluation in flight (and raise its error, if it had one)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error

    def __call__(self, row: dict[str, Any], acting: NumpyActor) -> bool:
        self.last_acting = acting
        if self.crossing is not None:
            return True
        if row["env_steps"] >= self.next_eval:
            self.wait()  # at most one evaluation in flight: a slow one delays the next, never piles up
            if self.crossing is not None:
                return True
            self.next_eval = row["env_steps"] + self.eval_every
            snapshot = copy.copy(acting)  # refresh() rebinds the arrays, so the snapshot keeps these weights
            if self.overlap:
                self._thread = threading.Thread(target=self._evaluate, args=(snapshot, row["env_steps"]),
                                                daemon=True, name="skill-eval")
                self._thread.start()
            else:
                self._evaluate(snapshot, row["env_steps"])
        return self.crossing is not None


def bench_skill(task: str = "hopper", target: float = 3000.0, seed: int = 0, eval_every: int = 20_480,
                eval_episodes: int = 5, max_steps: int = 1_000_000, overrides: dict[str, Any] | None = None,
                assignments: list[str] | tuple[str, ...] = (), overlap: bool = True,
                run_dir: str | None = None) -> dict[str, Any]:
    """Train ``task`` (its preset + ``overrides`` + ``key=value`` ``assignments``) until a deterministic
    evaluation reaches ``target``; stops there (or at ``max_steps``)."""
    import robots
    from trpo_tf.app.bench import machine_info
    from trpo_tf.app.training import config_for_task, make_trainer

    start = process_start_time()
    if eval_every < 1 or eval_episodes < 1 or max_steps < 1:
        raise ValueError("eval_every, eval_episodes and max_steps must be >= 1")
    config = config_for_task(task, {"total_steps": max_steps, "seed": seed, "eval_episodes": 0,
                                    **(overrides or {})}).with_overrides(list(assignments))
    make_eval_env = robots.resolve_task(task).env_factory(config.env_kwargs)  # separate copies
    probe = SkillProbe(make_eval_env, target, eval_every, eval_episodes, seed=20_000 + seed, start=start,
                       overlap=overlap)
    with tempfile.TemporaryDirectory(prefix="trpo-skill-") as tmp:
        trainer = make_trainer(config, run_dir or os.path.join(tmp, "run"), progress=False)
        trainer.train(callback=probe)
        probe.wait()
        if probe.crossing is None and probe.last_acting is not None and (
                not probe.evaluations or probe.evaluations[-1]["env_steps"] < trainer.env_steps):
            probe.next_eval = 0  # judge the final policy too
            probe(dict(env_steps=trainer.env_steps), probe.last_acting)
            probe.wait()
        train_steps = trainer.env_steps
    crossing = probe.crossing
    return {
        "task": task,
        "target": target,
        "seed": seed,
        "reached": crossing is not None,
        "seconds_to_target": crossing["finished_s"] if crossing else None,
        "env_steps_at_target": crossing["env_steps"] if crossing else None,
        "return_at_target": crossing["mean_return"] if crossing else None,
        "train_env_steps": train_steps,
        "wall_s": round(time.time() - start, 2),
        "evaluations": probe.evaluations,
        "settings": {"eval_every": eval_every, "eval_episodes": eval_episodes, "max_steps": max_steps,
                     "overlap": overlap, "config": {k: v for k, v in config.to_dict().items() if k != "env_kwargs"}},
        "machine": machine_info(),
    }


__all__ = ["SkillProbe", "bench_skill", "process_start_time"]
