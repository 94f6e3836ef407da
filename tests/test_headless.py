"""XLA and headless MuJoCo rendering in one process (the two-LLVM crash, see trpo_tf/headless.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def _run(code: str, env_gl: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    if env_gl is not None:
        env["MUJOCO_GL"] = env_gl
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=300)


def test_xla_training_and_osmesa_rendering_share_a_process_and_exit_cleanly():
    result = _run("""
        import trpo_tf.models, tensorflow as tf, gymnasium as gym, numpy as np
        f = tf.function(lambda x: tf.reduce_sum(tf.tanh(x @ tf.transpose(x))), jit_compile=True)
        assert float(f(tf.ones((4, 3)))) > 0
        env = gym.make("Hopper-v5", render_mode="rgb_array", width=64, height=64)
        env.reset(seed=0)
        frame = env.render()
        assert frame.shape == (64, 64, 3) and frame.std() > 0
        env.close()
        print("OK")
    """, "osmesa")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OK" in result.stdout


def test_import_trpo_tf_is_light():
    result = _run("""
        import sys, trpo_tf
        assert "tensorflow" not in sys.modules, "import trpo_tf must not load TensorFlow"
        assert trpo_tf.TRPOConfig().max_kl == 0.01
        assert "tensorflow" not in sys.modules
        print("OK")
    """, None)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-2000:]

