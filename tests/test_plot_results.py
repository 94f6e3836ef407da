"""benchmarks/plot_results.py: curves drawn from a metrics.csv written by the real MetricsCSV writer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import plot_results as pr  # noqa: E402
from trpo_tf.monitor import MetricsCSV  # noqa: E402


def _write_metrics(task_dir: Path, success: bool) -> None:
    task_dir.mkdir(parents=True)
    csv = MetricsCSV(task_dir / "metrics.csv")
    for i in range(1, 21):
        csv.append({"iteration": i, "env_steps": 2048 * i, "episode_return_mean": 10.0 * i if i != 5 else None,
                    "episode_return_std": 3.0, "success_rate": min(1.0, i / 15) if success else None})
    (task_dir / "random.json").write_text(json.dumps({"mean_return": -5.0, "std_return": 1.0}))
    (task_dir / "eval.json").write_text(json.dumps({"mean_return": 190.0, "std_return": 4.0, "success_rate": 1.0}))


@pytest.mark.parametrize("task, success", [("walker2d", False), ("gripper-reach", True)])
def test_plot_task_writes_a_nonblank_png(tmp_path: Path, task: str, success: bool) -> None:
    _write_metrics(tmp_path / task, success)
    out = pr.plot_task(tmp_path / task)
    assert out == tmp_path / task / "curve.png"
    image = mpimg.imread(out)
    assert image.shape[0] > 300 and image.shape[1] > 600
    assert float(np.std(image[..., :3])) > 0.05  # lines and text, not an empty canvas


def test_read_columns_keeps_empty_cells_as_nan(tmp_path: Path) -> None:
    _write_metrics(tmp_path / "t", success=False)
    cols = pr.read_columns(tmp_path / "t" / "metrics.csv", ["env_steps", "episode_return_mean"])
    assert cols["env_steps"][-1] == 2048 * 20
    assert np.isnan(cols["episode_return_mean"][4]) and cols["episode_return_mean"][5] == 60.0


def test_missing_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="metrics.csv"):
        pr.plot_task(tmp_path)
    (tmp_path / "metrics.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"has no .*column"):
        pr.read_columns(tmp_path / "metrics.csv", ["env_steps"])


def test_target_is_three_times_a_positive_and_mirrors_a_negative_random_return() -> None:
    assert pr.return_target(20.0) == pytest.approx(60.0)
    assert pr.return_target(-280.0) == pytest.approx(280.0)
    assert pr.return_target(0.0) == 0.0
