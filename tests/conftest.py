"""Test-wide settings: headless MuJoCo rendering and quiet TensorFlow."""

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
