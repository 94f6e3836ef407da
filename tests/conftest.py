"""Test-wide settings: headless MuJoCo rendering and quiet TensorFlow.

``import trpo_tf.models`` comes right after ``MUJOCO_GL=osmesa`` and before any test module imports mujoco:
it loads TensorFlow first and isolates OSMesa's LLVM from it (see ``trpo_tf/headless.py``).
"""

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One XLA cache for the session, this process and every `trpo` it starts (trpo_tf/compile_cache.py), in a
# temporary directory: the user's own cache is neither read nor written by the tests.
_XLA_CACHE = tempfile.TemporaryDirectory(prefix="trpo-tests-xla-")
os.environ.setdefault("TRPO_XLA_CACHE", _XLA_CACHE.name)

import trpo_tf.models  # noqa: E402,F401
from trpo_tf.compile_cache import enable  # noqa: E402

enable()


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real Pendulum-v1 run (128 steps, no XLA) that the CLI error and fuzz tests copy, damage or
    point commands at; tests that change it work on a copy."""
    from trpo_tf import TRPOConfig, train

    run = tmp_path_factory.mktemp("pendulum-run") / "pendulum"
    train(TRPOConfig(task="Pendulum-v1", total_steps=128, n_steps=64, jit_compile=False, critic_epochs=1,
                     eval_episodes=0), run, progress=False)
    return run
