"""trpo-tf: Trust Region Policy Optimization in TensorFlow/Keras for robot control, exported to ONNX.

    from trpo_tf import TRPOConfig, train, load_policy
    result = train(TRPOConfig(task="inverted-pendulum", total_steps=100_000), "runs/pendulum")
    policy = load_policy("runs/pendulum")
    action = policy.act(observation)            # numpy in, numpy out, deterministic by default
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the logs

__version__ = "0.1.0"

import tensorflow as _tf  # noqa: E402,F401  (before anything loads OSMesa: see trpo_tf.headless)

from trpo_tf.headless import prepare_osmesa as _prepare_osmesa  # noqa: E402

_prepare_osmesa()

from trpo_tf.config import ConfigError, TRPOConfig  # noqa: E402
from trpo_tf.policy import Policy, load_policy  # noqa: E402
from trpo_tf.runner import Trainer, config_for_task, resume, train  # noqa: E402

__all__ = ["ConfigError", "Policy", "TRPOConfig", "Trainer", "config_for_task", "load_policy", "resume", "train",
           "__version__"]
