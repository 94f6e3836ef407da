"""Watching a run: metrics.csv, TensorBoard, a progress bar (or one plain line per iteration), health warnings.

Health ranges are seed 004's "Key Diagnostics": line-search success > 80 %, value loss decreasing. (Mean
KL ≤ δ needs no warning: the line search accepts no step beyond δ.)
"""

from __future__ import annotations

import csv
import logging
import os
import sys
from collections import deque
from pathlib import Path
from typing import Any

from trpo_tf.files import atomic_path

log = logging.getLogger("trpo_tf")

METRIC_COLUMNS = [
    "iteration", "env_steps", "time_s", "steps_per_s", "collect_s", "policy_s", "critic_s",
    "episode_return_mean", "episode_return_std", "episode_length_mean", "episodes", "success_rate",
    "kl", "accepted", "backtracks", "surrogate_improvement", "cg_residual",
    "grad_norm", "entropy", "mean_std", "value_loss", "value_loss_after", "explained_variance",
    # the iteration by phase (issue 13): collect_s = acting_s + env_s; policy_s = gae_s + update_s
    "acting_s", "env_s", "gae_s", "update_s", "normalizer_s",
]


class MetricsCSV:
    """Append-only metrics.csv, one row per iteration, fsynced so a SIGKILL loses at most the row in flight.

    An existing file keeps its own header: rows appended to a file written by an older version (e.g. with
    the dropped ``linesearch_success`` column) leave the columns it lacks empty.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _columns(self) -> list[str]:
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, newline="", encoding="utf-8") as f:
                header = next(csv.reader(f), None)
            if header:
                return header
        return list(METRIC_COLUMNS)

    def truncate_after(self, iteration: int) -> None:
        """Drop rows past ``iteration`` (written after the checkpoint a resume restarts from)."""
        if not self.path.exists():
            return
        columns = self._columns()
        rows = [r for r in read_metrics(self.path, parse=False)
                if r.get("iteration") and int(r["iteration"]) <= iteration]
        with atomic_path(self.path) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)

    def append(self, row: dict[str, Any]) -> None:
        columns = self._columns()
        new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _fmt(row.get(k)) for k in columns})
            f.flush()
            os.fsync(f.fileno())


def read_metrics(path: str | os.PathLike, parse: bool = True) -> list[dict[str, Any]]:
    """THE metrics.csv reader: one dict per row, values as floats (empty or non-numeric cells become NaN),
    or as the raw strings with ``parse=False``. Reads files of every version (columns are the file's)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not parse:
        return rows
    return [{k: _float(v) for k, v in r.items() if k is not None} for r in rows]


def metrics_columns(path: str | os.PathLike) -> list[str]:
    """The column names of a metrics.csv file."""
    with open(path, newline="", encoding="utf-8") as f:
        return next(csv.reader(f), [])


def _float(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def _fmt(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


class HealthCheck:
    """Warns when a diagnostic leaves its healthy range: once per episode of trouble, and about the same
    diagnostic at most once every ``cooldown`` iterations (noisy signals flicker in and out of range)."""

    def __init__(self, window: int = 10, cooldown: int = 50) -> None:
        self.cooldown = cooldown
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
                  f"KL {row['kl']:.4f}  step {'accepted' if row['accepted'] else 'rejected'}")
        if self._bar is not None:
            self._bar.update(self._task, completed=row["env_steps"], status=status)
        elif self.enabled:
            print(f"iter {row['iteration']:4d}  steps {row['env_steps']:>9,}/{self.total:,}  {status}  "
                  f"vloss {row['value_loss']:.3g}", flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()

