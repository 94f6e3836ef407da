"""A policy loaded from a run directory: shapes, bounds, determinism, and what the exporter reads from it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from trpo_tf import load_policy
from trpo_tf.run_dir import RunDirError

OLD_RUN = Path(__file__).parent / "data" / "run-0.1.0"  # Pendulum-v1, actions in [-2, 2]


def test_act_shapes_bounds_and_determinism():
    policy = load_policy(OLD_RUN)
    obs = np.random.default_rng(0).normal(scale=100.0, size=(64, 3)).astype(np.float32)
    actions = policy.act(obs)
    assert actions.shape == (64, 1) and np.all(np.abs(actions) <= 2.0)
    np.testing.assert_array_equal(policy.act(obs), actions)
    assert policy.act(obs[0]).shape == (1,)
    sampled = policy.act(obs, deterministic=False)
    assert sampled.shape == (64, 1) and np.all(np.abs(sampled) <= 2.0) and not np.array_equal(sampled, actions)
    np.testing.assert_allclose(policy.tf_action(obs).numpy(), actions, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(3,\) or \(n, 3\)"):
        policy.act(np.zeros((2, 4)))


def test_metadata_and_weights_hash_are_stable_across_loads():
    a, b = load_policy(OLD_RUN), load_policy(OLD_RUN)
    assert a.weights_sha256() == b.weights_sha256() and len(a.weights_sha256()) == 64
    facts = a.provenance()
    assert facts == b.provenance() and set(facts) == {"run_info", "env_steps", "seed", "weights_sha256",
                                                      "randomization"}
    info = facts["run_info"]
    assert info["task"] == "Pendulum-v1" and info["obs_dim"] == 3 and info["action_high"] == [2.0]
    assert facts["env_steps"] == 512 and len(info["obs_layout"]) == 3 and facts["randomization"] == {}
    assert json.loads(json.dumps(facts)) == facts  # plain data


def test_a_checkpoint_of_another_model_is_a_run_dir_error(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    config = (run / "config.yaml").read_text().replace("- 16\n- 16", "- 32\n- 32")
    (run / "config.yaml").write_text(config)
    with pytest.raises(RunDirError, match="does not match config.yaml"):
        load_policy(run)
