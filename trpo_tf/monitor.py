"""Watching a run: metrics.csv, TensorBoard, a progress bar (or one plain line per iteration), health warnings.

Health ranges are seed 004's "Key Diagnostics": line-search success > 80 %, value loss decreasing. (Mean
KL ≤ δ needs no warning: the line search accepts no step beyond δ.)
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import sys
from collections import deque
from pathlib import Path
from typing import Any

from trpo_tf.files import atomic_path

log = logging.getLogger("trpo_tf")

METRIC_COLUMNS = [
    "iteration", "env_steps", "time_s", "steps_per_s", "collect_s", "policy_s",
    "episode_return_mean", "episode_return_std", "episode_length_mean", "episodes", "success_rate",
    "kl", "accepted", "backtracks", "surrogate_improvement", "cg_residual",
    "grad_norm", "entropy", "mean_std", "value_loss", "value_loss_after", "explained_variance",
    # the iteration by phase (issue 13): collect_s = acting_s + env_s; policy_s = gae_s + update_s + critic_wait_s;
    # update_s: the policy step and the critic fit (fused), or with overlap_critic the policy step alone, the
    # critic fit running beside the next collection and critic_wait_s the time the loop then waited for it
    "acting_s", "env_s", "gae_s", "update_s", "normalizer_s", "critic_wait_s",
]  # files written before the fused update also have ``critic_s`` (always NaN there since issue 13): still read


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

    def truncate_after(self, iteration: int, max_dropped: int | None = None) -> None:
        """Drop rows past ``iteration`` (written after the checkpoint a resume restarts from).

        Every row is read and checked first (:func:`read_metrics`: a damaged file is a RunDirError); more
        than ``max_dropped`` rows past the checkpoint mean it is not the run's newest one, and then nothing
        is changed either (RunDirError)."""
        if not self.path.exists():
            return
        from trpo_tf.run_errors import RunDirError

        columns, rows = _parse_metrics(self.path)
        later = [int(parsed["iteration"]) for _, parsed in rows if parsed["iteration"] > iteration]
        if max_dropped is not None and len(later) > max_dropped:
            raise RunDirError(f"{self.path} has rows up to iteration {max(later)} but the newest intact checkpoint "
                              f"is from iteration {iteration}; refusing to drop {len(later)} rows (nothing was "
                              "changed)")
        with atomic_path(self.path) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, columns or METRIC_COLUMNS, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(raw for raw, parsed in rows if parsed["iteration"] <= iteration)

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
    """THE metrics.csv reader: one dict per row, values as floats (empty cells become NaN), or as the raw
    strings with ``parse=False``. Reads files of every version (the columns are the file's own).

    Raises RunDirError (one line naming the file and line) if the file is not UTF-8 CSV, lacks the
    ``iteration`` column, or has a row with a missing, extra or non-numeric cell (``iteration`` must be an
    integer >= 1). An unterminated last line that does not parse is a row whose write was cut off: skipped.
    """
    return [parsed if parse else raw for raw, parsed in _parse_metrics(Path(path))[1]]


def metrics_columns(path: str | os.PathLike) -> list[str]:
    """The column names of a metrics.csv file (checked like :func:`read_metrics`)."""
    return _parse_metrics(Path(path))[0]


def _parse_metrics(path: Path) -> tuple[list[str], list[tuple[dict[str, str], dict[str, float]]]]:
    from trpo_tf.run_errors import RunDirError

    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise RunDirError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise RunDirError(f"{path} is not UTF-8 text (byte {exc.start}); expected comma-separated metrics") from None
    try:
        return _parse_metrics_text(path, text)
    except RunDirError:
        cut = text.rfind("\n")
        if text.endswith("\n") or cut < 0:
            raise
        return _parse_metrics_text(path, text[:cut + 1])


def _parse_metrics_text(path: Path, text: str) -> tuple[list[str], list[tuple[dict[str, str], dict[str, float]]]]:
    from trpo_tf.run_errors import RunDirError

    rows: list[tuple[dict[str, str], dict[str, float]]] = []
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = list(reader.fieldnames or [])
        if header and "iteration" not in header:
            raise RunDirError(f"{path} has no 'iteration' column in its header line")
        for row in reader:
            if None in row or None in row.values():
                cells = len(header) + len(row[None]) if None in row else sum(v is not None for v in row.values())
                raise RunDirError(f"{path} line {reader.line_num}: {cells} cells where the header has {len(header)}")
            parsed: dict[str, float] = {}
            for key, value in row.items():
                try:
                    parsed[key] = float(value) if value != "" else float("nan")
                except ValueError:
                    raise RunDirError(f"{path} line {reader.line_num}: {key} = {value[:40]!r} is not a number") \
                        from None
            it = parsed["iteration"]
            if not (math.isfinite(it) and it >= 1 and it.is_integer()):
                raise RunDirError(f"{path} line {reader.line_num}: iteration {row['iteration']!r} is not an "
                                  "integer >= 1")
            rows.append((row, parsed))
    except csv.Error as exc:
        raise RunDirError(f"{path} is not a readable CSV file: {exc}") from None
    return header, rows


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

