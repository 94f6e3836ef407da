"""benchmarks/scaling_model.py: the many-node projection, on the committed measurements of docs/scaling.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import scaling_model as sm  # noqa: E402

DATA = ROOT / "docs" / "results" / "scaling"


def _inputs() -> tuple[dict, list[dict]]:
    train = json.loads((DATA / "bench_train_vector_envs.json").read_text())
    updates = [json.loads((DATA / f"bench_update_{b}.json").read_text()) for b in (2048, 16384)]
    return train, updates


def test_fit_line_recovers_a_line():
    assert sm.fit_line([1.0, 2.0, 4.0], [3.0, 5.0, 9.0]) == pytest.approx((1.0, 2.0))


def test_projection_is_built_from_the_measurements_and_saturates_at_the_learner():
    train, updates = _inputs()
    result = sm.project(train, updates, [1, 8, 32, 128], workers_per_node=2, envs_per_worker=4, n_steps=256,
                        bytes_per_sample=62.0, bandwidth_bytes_s=1.25e8, min_ms_per_worker=1.0)
    fit, rows = result["fit"], result["rows"]
    # the segment of a 4-env worker is the measured one of the 2-worker run (8 envs / 2 workers, 256 steps)
    assert fit["segment_s"] == pytest.approx(train["modes"]["ray:2"]["ray_worker_busy_s_median"])
    u = {x["settings"]["batch"]: x["update_ms_median"] / 1000 for x in updates}
    assert fit["update_b_s_per_sample"] == pytest.approx((u[16384] - u[2048]) / (16384 - 2048))
    rates = [r["steps_per_s"] for r in rows]
    assert rates == sorted(rates) and rates[-1] < fit["ceiling_steps_per_s"]  # more nodes help, up to 1/b
    shares = [r["update_share"] for r in rows]
    assert shares == sorted(shares) and shares[-1] > 0.5  # the serial update is what stops the scaling
    for r in rows:
        assert r["hours_to_100M"] == pytest.approx(100 * r["hours_to_1M"])
    assert "| 128 | 262,144 |" in sm.markdown(result)
