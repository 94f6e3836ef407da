"""trpo-tf: Trust Region Policy Optimization in TensorFlow/Keras for robot control, exported to ONNX.

    from trpo_tf import TRPOConfig, train, load_policy
    result = train(TRPOConfig(task="inverted-pendulum", total_steps=100_000), "runs/pendulum")
    policy = load_policy("runs/pendulum")
    action = policy.act(observation)            # numpy in, numpy out, deterministic by default

The names below load on first use (PEP 562), so ``import trpo_tf`` — and ``trpo --help`` or a bad
command line — does not pay TensorFlow's start-up.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the logs

__version__ = "0.1.0"

_EXPORTS = {
    "ConfigError": "trpo_tf.config",
    "TRPOConfig": "trpo_tf.config",
    "Policy": "trpo_tf.policy",
    "load_policy": "trpo_tf.policy",
    "TRPO": "trpo_tf.algorithm",
    "Trainer": "trpo_tf.runner",
    "TaskDescription": "trpo_tf.run_dir",
    # Conveniences that resolve task names (through ``robots``) live in the app layer; re-exported here by
    # name only, so the learner core itself never imports the app.
    "config_for_task": "trpo_tf.app.training",
    "resume": "trpo_tf.app.training",
    "train": "trpo_tf.app.training",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'trpo_tf' has no attribute {name!r}")
