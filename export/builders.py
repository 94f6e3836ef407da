"""Small real ONNX policy files for tests and `trpo bench runtime`, built with the ``onnx`` package (no TensorFlow).

They follow the exporter's contract (see ``export/metadata.py`` and ``docs/runtime.md``): one float32
input ``observation`` of shape ``[N, obs_dim]`` and one output ``action`` — float32 ``[N, act_dim]``
clipped into the bounds for continuous policies, int64 ``[N]`` (argmax) for discrete ones — and the
policy metadata as JSON under the ``trpo_tf`` key of ``metadata_props``.

The network is a 2-layer tanh MLP: Gemm → Tanh → Gemm → Tanh → Gemm, then Clip (continuous) or
ArgMax (discrete). Weights are random but seeded, so files are reproducible.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from export.metadata import METADATA_KEY, FORMAT_VERSION

OPSET = 17


def make_metadata(
    obs_dim: int,
    act_dim: int,
    discrete: bool = False,
    bound: float = 1.0,
    weights_sha256: str = "0" * 64,
    low: list[float] | None = None,
    high: list[float] | None = None,
) -> dict[str, Any]:
    """A valid metadata dict for a test policy (one obs_layout field per observation entry).
    Bounds are ``[-bound, bound]`` per dimension unless ``low``/``high`` are given."""
    low = [-bound] * act_dim if low is None else list(low)
    high = [bound] * act_dim if high is None else list(high)
    return {
        "format_version": FORMAT_VERSION,
        "task": "TestTask",
        "gym_id": "robots/Test-v0",
        "obs_dim": obs_dim,
        "act_dim": act_dim,
        "discrete": discrete,
        "n_actions": act_dim if discrete else None,
        "action_low": None if discrete else low,
        "action_high": None if discrete else high,
        "obs_layout": [
            {"name": f"x{i}", "size": 1, "unit": "1", "description": f"test entry {i}"}
            for i in range(obs_dim)
        ],
        "control_hz": 1000.0,
        "env_steps": 0,
        "seed": 0,
        "package_version": "0.1.0",
        "weights_sha256": weights_sha256,
    }


def _mlp_nodes(
    first: str, obs_dim: int, out_dim: int, hidden: tuple[int, ...], rng: np.random.Generator, scale: float
) -> tuple[list[onnx.TensorProto], list[onnx.NodeProto]]:
    """Initializers and nodes for tanh hidden layers (input ``first``) and a linear head named ``head``."""
    inits, nodes = [], []
    prev, prev_dim = first, obs_dim
    sizes = list(hidden) + [out_dim]
    for i, size in enumerate(sizes):
        w = (rng.standard_normal((prev_dim, size)) * scale / np.sqrt(prev_dim)).astype(np.float32)
        b = (rng.standard_normal(size) * 0.1).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        last = i == len(sizes) - 1
        out = "head" if last else f"z{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"B{i}"], [out]))
        if not last:
            nodes.append(helper.make_node("Tanh", [out], [f"h{i}"]))
            out = f"h{i}"
        prev, prev_dim = out, size
    return inits, nodes


def build_mlp_model(
    obs_dim: int = 11,
    act_dim: int = 3,
    hidden: tuple[int, ...] = (64, 64),
    discrete: bool = False,
    bound: float = 1.0,
    seed: int = 0,
    scale: float = 3.0,
    metadata: dict[str, Any] | None | str = "default",
    low: list[float] | None = None,
    high: list[float] | None = None,
    clip: bool = True,
    sqrt_input: bool = False,
    index_offset: int = 0,
    input_name: str = "observation",
    batch_dim: str | int | None = "N",
) -> onnx.ModelProto:
    """An in-memory ONNX policy. ``metadata="default"`` attaches :func:`make_metadata`; ``None`` none;
    a dict is attached as JSON; a str is attached verbatim (to test malformed metadata).

    Continuous: ``Clip(head, -bound, bound)``, or ``Max(Min(head, high), low)`` with per-dimension
    ``low``/``high``; ``clip=False`` leaves the head unclipped (the runtime must clip). Discrete:
    ``ArgMax(head) + index_offset``. ``sqrt_input`` feeds ``Sqrt(observation)`` to the MLP, so any
    negative entry yields NaN actions. ``input_name``/``batch_dim`` break the contract on purpose.
    """
    rng = np.random.default_rng(seed)
    first = input_name
    nodes_pre = []
    if sqrt_input:
        nodes_pre.append(helper.make_node("Sqrt", [input_name], ["sqrt_obs"]))
        first = "sqrt_obs"
    inits, nodes = _mlp_nodes(first, obs_dim, act_dim, hidden, rng, scale)
    nodes = nodes_pre + nodes
    if discrete:
        nodes.append(helper.make_node("ArgMax", ["head"], ["argmax"], axis=1, keepdims=0))
        inits.append(numpy_helper.from_array(np.array(index_offset, np.int64), "offset"))
        nodes.append(helper.make_node("Add", ["argmax", "offset"], ["action"]))
        out = helper.make_tensor_value_info("action", TensorProto.INT64, [batch_dim])
    else:
        if not clip:
            nodes.append(helper.make_node("Identity", ["head"], ["action"]))
        elif low is None and high is None:
            inits += [
                numpy_helper.from_array(np.array(-bound, np.float32), "low"),
                numpy_helper.from_array(np.array(bound, np.float32), "high"),
            ]
            nodes.append(helper.make_node("Clip", ["head", "low", "high"], ["action"]))
        else:
            inits += [
                numpy_helper.from_array(np.asarray(low, np.float32), "low"),
                numpy_helper.from_array(np.asarray(high, np.float32), "high"),
            ]
            nodes.append(helper.make_node("Min", ["head", "high"], ["below_high"]))
            nodes.append(helper.make_node("Max", ["below_high", "low"], ["action"]))
        out = helper.make_tensor_value_info("action", TensorProto.FLOAT, [batch_dim, act_dim])
    inp = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch_dim, obs_dim])
    graph = helper.make_graph(nodes, "test_policy", [inp], [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # readable by every onnxruntime >= 1.12
    if metadata == "default":
        digest = hashlib.sha256(b"".join(t.raw_data for t in inits)).hexdigest()
        metadata = make_metadata(obs_dim, act_dim, discrete, bound, digest, low, high)
    if isinstance(metadata, dict):
        helper.set_model_props(model, {METADATA_KEY: json.dumps(metadata)})
    elif isinstance(metadata, str):
        helper.set_model_props(model, {METADATA_KEY: metadata})
    onnx.checker.check_model(model)
    return model


def write_mlp(path: str | Path, **kwargs: Any) -> Path:
    """Build with :func:`build_mlp_model` and save to ``path``; returns the path."""
    path = Path(path)
    onnx.save(build_mlp_model(**kwargs), str(path))
    return path
