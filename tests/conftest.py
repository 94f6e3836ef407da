"""Test-wide settings: headless MuJoCo rendering and quiet TensorFlow.

``import trpo_tf.models`` comes right after ``MUJOCO_GL=osmesa`` and before any test module imports mujoco:
it loads TensorFlow first and isolates OSMesa's LLVM from it (see ``trpo_tf/headless.py``).
"""

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import trpo_tf.models  # noqa: E402,F401
