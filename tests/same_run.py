"""Two training runs that must be the same run: equal metrics rows (timing columns aside) and bit-identical
checkpoints (every variable, the optimizer's slots, the counters and the RNG state). Used by test_overlap and
test_process_rollout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from trpo_tf.monitor import read_metrics
from trpo_tf.run_dir import RunDir

# Timing columns differ run to run; everything else must be equal.
TIMING = {"time_s", "steps_per_s", "collect_s", "policy_s", "acting_s", "env_s", "gae_s", "update_s",
          "normalizer_s", "critic_wait_s", "critic_s"}


def checkpoints(run_dir: Path) -> dict[int, dict[str, np.ndarray]]:
    """Every tensor of every checkpoint of a run, by iteration (the optimizer's slots, counters and RNG too)."""
    out = {}
    for index in sorted((run_dir / "checkpoints").glob("ckpt-*.index")):
        reader = tf.train.load_checkpoint(str(index.with_suffix("")))
        names = [n for n in reader.get_variable_to_shape_map() if "OBJECT_GRAPH" not in n]
        out[int(index.stem.split("-")[1])] = {n: reader.get_tensor(n) for n in names}
    return out


def metric_rows(run_dir: Path) -> list[dict[str, float]]:
    """metrics.csv without its timing columns."""
    return [{k: v for k, v in row.items() if k not in TIMING} for row in read_metrics(RunDir(run_dir).metrics)]


def assert_same_run(a: Path, b: Path) -> None:
    rows_a, rows_b = metric_rows(a), metric_rows(b)
    assert len(rows_a) == len(rows_b) > 0
    for ra, rb in zip(rows_a, rows_b):
        assert ra.keys() == rb.keys()
        for key in ra:  # bit-identical (NaN where no episode finished, on both sides)
            assert ra[key] == rb[key] or (np.isnan(ra[key]) and np.isnan(rb[key])), (ra["iteration"], key)
    ckpt_a, ckpt_b = checkpoints(a), checkpoints(b)
    assert ckpt_a.keys() == ckpt_b.keys() and ckpt_a
    for it in ckpt_a:
        assert ckpt_a[it].keys() == ckpt_b[it].keys()
        for name, value in ckpt_a[it].items():
            assert np.array_equal(value, ckpt_b[it][name]), (it, name)
