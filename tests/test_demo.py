"""README's first command, ``trpo demo``, end to end with a smaller step budget: it trains, exports, runs the
ONNX file in closed loop through the robot's ControlLoop, and the ONNX return equals TensorFlow's."""

from __future__ import annotations

import json

import numpy as np

from cli_helpers import trpo


def test_demo_trains_exports_and_the_onnx_closed_loop_matches_tensorflow(tmp_path):
    out = tmp_path / "demo"
    result = trpo("demo", "--steps", "4096", "--out", str(out), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[3/3] running the ONNX policy in closed loop" in result.stdout and "ONNX policy:" in result.stdout
    report = json.loads((out / "demo.json").read_text())
    tf_eval, onnx_eval = report["tf_eval"], report["onnx_eval"]
    assert report["task"] == "gripper-reach" and report["env_steps"] == 4096
    assert tf_eval["episodes"] == onnx_eval["episodes"] == 10 and tf_eval["seed"] == onnx_eval["seed"]
    np.testing.assert_allclose(onnx_eval["returns"], tf_eval["returns"], rtol=1e-3, atol=1e-3)
    assert onnx_eval.get("success_rate") == tf_eval.get("success_rate")
    assert report["parity_max_abs_error"] <= 1e-5 and (out / "policy.onnx").is_file()
