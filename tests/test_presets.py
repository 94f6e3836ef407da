"""Every registered task has a preset that is a valid TRPOConfig (unknown keys or bad values fail here)."""

from __future__ import annotations

import pytest

import robots
from trpo_tf.config import TRPOConfig


@pytest.mark.parametrize("task", [t.name for t in robots.list_tasks()])
def test_every_task_has_a_valid_preset(task):
    spec = robots.get_task(task)
    assert spec.preset is not None, f"{task} has no preset"
    config = TRPOConfig(task=task).updated(robots.load_preset(task))
    assert config.total_steps > 0 and config.batch_size >= config.critic_batch_size
