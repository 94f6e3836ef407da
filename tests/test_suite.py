"""benchmarks/suite.py: real `trpo train` runs, skipped once done, resumed (not redone) when the budget grows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import suite  # noqa: E402

FAST = ["jit_compile=false", "n_envs=1", "n_steps=512", "vector_env=sync", "critic_epochs=1", "eval_episodes=2",
        "checkpoint_every=1"]


def _suite(tmp_path: Path, steps: int, seeds: list[str]) -> int:
    return suite.main(["--tasks", "cartpole", "--seeds", *seeds, "--steps", str(steps), "--runs",
                       str(tmp_path / "runs"), "--publish", str(tmp_path / "pub"), "--set", *FAST])


def _rows(run_dir: Path) -> list[int]:
    lines = (run_dir / "metrics.csv").read_text(encoding="utf-8").splitlines()[1:]
    return [int(line.split(",")[0]) for line in lines]


@pytest.mark.timeout(600)
def test_suite_trains_publishes_skips_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _suite(tmp_path, 1024, ["0", "1"]) == 0
    runs = tmp_path / "runs"
    ledger = json.loads((runs / "suite.json").read_text())
    assert {k: v["done_steps"] for k, v in ledger["runs"].items()} == {"cartpole/seed-0": 1024,
                                                                       "cartpole/seed-1": 1024}
    table = (tmp_path / "pub" / "table.md").read_text()
    assert "| cartpole | 2 |" in table
    assert (tmp_path / "pub" / "cartpole" / "curve.png").stat().st_size > 1000
    summary = json.loads((tmp_path / "pub" / "suite.json").read_text())[0]
    evals = [json.loads((runs / "cartpole" / f"seed-{s}" / "eval.json").read_text())["mean_return"] for s in (0, 1)]
    assert summary["mean"] == pytest.approx(sum(evals) / 2)
    assert summary["worst"] == pytest.approx(min(evals))

    # Same command again: nothing is trained (no new segment, metrics untouched).
    mtime = (runs / "cartpole" / "seed-0" / "metrics.csv").stat().st_mtime_ns
    assert _suite(tmp_path, 1024, ["0", "1"]) == 0
    assert "skipped" in capsys.readouterr().out
    again = json.loads((runs / "suite.json").read_text())
    assert [len(v["segments"]) for v in again["runs"].values()] == [1, 1]
    assert (runs / "cartpole" / "seed-0" / "metrics.csv").stat().st_mtime_ns == mtime

    # A larger budget continues seed 0 from its checkpoint: iterations 1, 2 kept, 3, 4 added, none repeated.
    assert _suite(tmp_path, 2048, ["0"]) == 0
    assert _rows(runs / "cartpole" / "seed-0") == [1, 2, 3, 4]
    segments = json.loads((runs / "suite.json").read_text())["runs"]["cartpole/seed-0"]["segments"]
    assert [s["args"][1] for s in segments] == ["--task", "--resume"]
    assert segments[-1]["steps_before"] == 1024 and segments[-1]["steps_after"] == 2048


def test_markdown_table_puts_peers_beside_ours() -> None:
    row = {"task": "hopper", "seeds": [0, 1, 2], "mean": 3400.0, "std": 120.0, "worst": 3250.0, "worst_seed": 2,
           "wall_s_mean": 180.0, "steps_per_s_mean": 5555.0}
    text = suite.markdown_table([row])
    assert "| hopper | 3 | 3,400 ± 120 | 3,250 (seed 2) | 3.0 min | 5,555 | 3,372 ± 215 | 3,618 | 2,046 ± 1,038 |" in text
