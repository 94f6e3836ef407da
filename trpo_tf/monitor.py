"""Watching a run: metrics.csv, TensorBoard, a progress bar (or one plain line per iteration), health warnings.

Health ranges are seed 004's "Key Diagnostics": mean KL ≤ δ, line-search success > 80 %, value loss
decreasing.
"""

from __future__ import annotations

import csv
import logging
import os
import sys
from collections import deque
from pathlib import Path
from typing import Any

log = logging.getLogger("trpo_tf")

METRIC_COLUMNS = [
    "iteration", "env_steps", "time_s", "steps_per_s", "collect_s", "policy_s", "critic_s",
    "episode_return_mean", "episode_return_std", "episode_length_mean", "episodes", "success_rate",
    "kl", "accepted", "linesearch_success", "backtracks", "surrogate_improvement", "cg_residual",
    "grad_norm", "entropy", "mean_std", "value_loss", "value_loss_after", "explained_variance",
]


class MetricsCSV:
    """Append-only metrics.csv, one row per iteration, fsynced so a SIGKILL loses at most the row in flight."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def truncate_after(self, iteration: int) -> None:
        """Drop rows past ``iteration`` (written after the checkpoint a resume restarts from)."""
        if not self.path.exists():
            return
        with open(self.path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r.get("iteration") and int(r["iteration"]) <= iteration]
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, METRIC_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def append(self, row: dict[str, Any]) -> None:
        new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, METRIC_COLUMNS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _fmt(row.get(k)) for k in METRIC_COLUMNS})
            f.flush()
            os.fsync(f.fileno())


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """metrics.csv as a list of dicts of floats (empty cells become NaN)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: float(v) if v not in ("", None) else float("nan") for k, v in r.items()}
                for r in csv.DictReader(f)]


def _fmt(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


class HealthCheck:
    """Warns when a diagnostic leaves its healthy range: once per episode of trouble, and about the same
    diagnostic at most once every ``cooldown`` iterations (noisy signals flicker in and out of range)."""

    def __init__(self, max_kl: float, window: int = 10, cooldown: int = 50) -> None:
        self.max_kl, self.cooldown = max_kl, cooldown
        self.accepted: deque[bool] = deque(maxlen=window)
        self.value_losses: deque[float] = deque(maxlen=window)
        self.active: set[str] = set()
        self.calls = 0
        self.last_warned: dict[str, int] = {}

    def __call__(self, row: dict[str, Any]) -> list[str]:
        self.calls += 1
        self.accepted.append(bool(row["accepted"]))
        self.value_losses.append(float(row["value_loss"]))
        problems = {}
        if row["kl"] > 1.5 * self.max_kl:
            problems["kl"] = f"mean KL {row['kl']:.4g} is above the trust region δ={self.max_kl}"
        if len(self.accepted) == self.accepted.maxlen:
            rate = sum(self.accepted) / len(self.accepted)
            if rate < 0.8:
                problems["linesearch"] = (f"line-search success {rate:.0%} over the last {len(self.accepted)} "
                                          "iterations (healthy > 80%): try a smaller max_kl or more cg_iters")
        if len(self.value_losses) == self.value_losses.maxlen:
            half = len(self.value_losses) // 2
            old, new = list(self.value_losses)[:half], list(self.value_losses)[half:]
            if sum(new) / len(new) > 2.0 * sum(old) / len(old):
                problems["value_loss"] = ("value loss is rising (doubled over the last iterations): "
                                          "consider normalize_reward or a lower critic_lr")
        fresh = [key for key in problems if key not in self.active
                 and self.calls - self.last_warned.get(key, -self.cooldown) >= self.cooldown]
        messages = [problems[key] for key in fresh]
        self.last_warned.update({key: self.calls for key in fresh})
        self.active = set(problems)
        for message in messages:
            log.warning(message)
        return messages


class Progress:
    """A rich progress bar on a terminal; one plain line per iteration otherwise (CI, Docker logs)."""

    def __init__(self, total_steps: int, start_steps: int = 0, enabled: bool = True) -> None:
        self.total, self.enabled = total_steps, enabled
        self.tty = enabled and sys.stdout.isatty()
        self._bar = None
        if self.tty:
            from rich.progress import BarColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

            self._bar = RichProgress(TextColumn("[bold]trpo"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
                                     TimeRemainingColumn(), TextColumn("{task.fields[status]}"))
            self._task = self._bar.add_task("train", total=total_steps, completed=start_steps, status="")
            self._bar.start()

    def update(self, row: dict[str, Any]) -> None:
        status = (f"{row['steps_per_s']:,.0f} steps/s  return {row['episode_return_mean']:.1f}  "
                  f"KL {row['kl']:.4f}  LS {row['linesearch_success']:.0%}")
        if self._bar is not None:
            self._bar.update(self._task, completed=row["env_steps"], status=status)
        elif self.enabled:
            print(f"iter {row['iteration']:4d}  steps {row['env_steps']:>9,}/{self.total:,}  {status}  "
                  f"vloss {row['value_loss']:.3g}", flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()

