"""Export trained trpo-tf policies and run them on robots.

* ``export.metadata`` — the policy metadata stored in every exported ONNX file (stdlib only).
* ``export.runtime``  — ``OnnxPolicy``: numpy + onnxruntime, no TensorFlow (runs on the robot).
* ``export.control``  — ``RobotInterface`` and the fixed-rate ``ControlLoop`` (numpy only).
* ``export.onnx``     — the exporter (needs TensorFlow and tf2onnx; training machine only).

This file imports nothing on purpose: the robot-side modules must load without TensorFlow.
"""
