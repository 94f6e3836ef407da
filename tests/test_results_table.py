"""benchmarks/results_table.py: one Markdown row per task from a run's real files (MetricsCSV, TRPOConfig)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import results_table as rt  # noqa: E402
from trpo_tf.config import TRPOConfig  # noqa: E402
from trpo_tf.monitor import MetricsCSV  # noqa: E402


def _task_dir(root: Path, task: str, returns: list[float], success: list[float] | None, final: bool) -> Path:
    d = root / task
    d.mkdir(parents=True)
    csv = MetricsCSV(d / "metrics.csv")
    for i, r in enumerate(returns, start=1):
        csv.append({"iteration": i, "env_steps": 1000 * i, "time_s": 2.0 * i, "episode_return_mean": r,
                    "success_rate": success[i - 1] if success else None})
    TRPOConfig(task=task, total_steps=1000 * len(returns), seed=0).save(d / "config.yaml")
    (d / "random.json").write_text(json.dumps({"mean_return": -10.0, "std_return": 2.0}))
    if final:
        (d / "eval.json").write_text(json.dumps({"mean_return": 55.0, "std_return": 5.0}))
    return d


def test_return_task_row_uses_the_mirrored_target_and_the_first_crossing(tmp_path: Path) -> None:
    d = _task_dir(tmp_path, "half-cheetah", [-20.0, 5.0, 12.0, 9.0, 30.0], None, final=True)
    row = rt.task_row(d)
    assert row["target"] == "return ≥ 10.0"  # random -10 → +10
    assert row["steps_to_target"] == 3000
    assert row["steps_per_s"] == pytest.approx(500.0)
    text = rt.markdown_row(row)
    assert "55.0 ± 5.0" in text and "`trpo train --task half-cheetah --steps 5000 --seed 0`" in text


def test_success_task_row_and_an_unfinished_run(tmp_path: Path) -> None:
    d = _task_dir(tmp_path, "gripper-pick-lift", [1.0, 2.0, 3.0], [0.0, 0.1, 0.2], final=False)
    row = rt.task_row(d)
    assert row["target"] == "success ≥ 30%" and row["steps_to_target"] is None
    text = rt.markdown_row(row)
    assert "not reached" in text and "did not finish" in text


def test_a_run_without_a_random_baseline_gets_no_target(tmp_path: Path) -> None:
    d = _task_dir(tmp_path, "hopper", [1.0, 2.0], None, final=True)
    (d / "random.json").unlink()
    row = rt.task_row(d)
    assert row["steps_to_target"] is None and "no random.json" in row["target"]
    text = rt.markdown_row(row)
    assert "not measured" in text and "not reached" not in text


def test_a_directory_without_a_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="metrics.csv"):
        rt.task_row(tmp_path)
