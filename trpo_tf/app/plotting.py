"""Learning curves from ``metrics.csv``: one line per run, or mean ± std over the runs of one task.

Runs of the same task are resampled by linear interpolation onto a common x grid (their overlapping
x range), then averaged; the band is ± one standard deviation across runs (Henderson et al. 2018,
"Deep RL that Matters", recommend reporting several seeds with their spread).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trpo_tf.app.errors import UsageError
from trpo_tf.files import atomic_path

GRID_POINTS = 200


@dataclass
class Curve:
    """One run's (x, y) points, NaN rows (iterations without a finished episode) removed."""

    run_dir: Path
    task: str
    x: np.ndarray
    y: np.ndarray


def load_curve(run_dir: str | os.PathLike, x: str, y: str) -> Curve:
    """Read ``x`` and ``y`` columns of a run's metrics.csv; errors name the file or the known columns."""
    from trpo_tf.monitor import metrics_columns, read_metrics
    from trpo_tf.run_dir import RunDir, RunDirError

    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise RunDirError(f"run directory {run.path} does not exist")
    if not run.metrics.is_file():
        raise RunDirError(f"{run.path} has no metrics.csv (is it a trpo-tf run directory?)")
    columns = metrics_columns(run.metrics)
    for column in (x, y):
        if column not in columns:
            raise UsageError(f"metrics.csv has no column {column!r}; columns: {', '.join(columns)}")
    rows = read_metrics(run.metrics)
    xs = np.array([r[x] for r in rows], float)
    ys = np.array([r[y] for r in rows], float)
    keep = np.isfinite(xs) & np.isfinite(ys)
    return Curve(run.path, _task_of(run.config), xs[keep], ys[keep])


def _task_of(config_yaml: Path) -> str:
    """The run's task from its config.yaml ("?" if unreadable: the curve is still worth drawing)."""
    from trpo_tf.config import ConfigError, read_yaml_mapping

    try:
        return str(read_yaml_mapping(config_yaml).get("task", "?"))
    except ConfigError:
        return "?"


def mean_std_on_grid(curves: list[Curve], points: int = GRID_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interpolate every curve onto a shared grid over the x range all of them cover; (grid, mean, std)."""
    usable = [c for c in curves if len(c.x) >= 1]
    if not usable:
        raise UsageError("no finite data points to plot")
    lo = max(float(c.x.min()) for c in usable)
    hi = min(float(c.x.max()) for c in usable)
    if hi < lo:
        raise UsageError("the runs' x ranges do not overlap; plot them separately")
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([lo])
    stacked = np.stack([np.interp(grid, c.x, c.y) for c in usable])
    return grid, stacked.mean(axis=0), stacked.std(axis=0)


def plot_runs(run_dirs: list[str | os.PathLike], out: str | os.PathLike, x: str = "env_steps",
              y: str = "episode_return_mean") -> Path:
    """Draw ``y`` against ``x`` for every run into ``out`` (PNG, SVG or PDF by extension); returns the path.

    Runs are grouped by task: a task with one run is a line; a task with several runs is their mean with a
    ± std band over runs and the individual runs faintly behind it.
    """
    out = Path(out)
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UsageError(f"plot file must end in .png, .svg or .pdf, got {out.name!r}")
    curves = [load_curve(d, x, y) for d in run_dirs]  # every input checked before anything is drawn
    groups: dict[str, list[Curve]] = {}
    for curve in curves:
        groups.setdefault(curve.task, []).append(curve)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    try:
        for (task, members), color in zip(groups.items(), _colors(len(groups))):
            if len(members) == 1:
                c = members[0]
                ax.plot(c.x, c.y, color=color, lw=1.8, label=f"{task} ({c.run_dir.name})")
                continue
            for c in members:
                ax.plot(c.x, c.y, color=color, lw=0.8, alpha=0.25)
            grid, mean, std = mean_std_on_grid(members)
            ax.plot(grid, mean, color=color, lw=2.0, label=f"{task}: mean of {len(members)} runs")
            ax.fill_between(grid, mean - std, mean + std, color=color, alpha=0.2, label=f"{task}: ± std")
        ax.set_xlabel(x.replace("_", " "))
        ax.set_ylabel(y.replace("_", " "))
        ax.set_title(f"{y} vs {x}")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            fig.savefig(tmp)
    finally:
        plt.close(fig)
    return out


def _colors(n: int) -> list[str]:
    base = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    return [base[i % len(base)] for i in range(n)]
