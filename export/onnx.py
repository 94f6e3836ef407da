"""Export a trained policy to ONNX, behind a parity gate against TensorFlow (training machine only).

The graph is ``policy.tf_action`` traced as a ``tf.function`` with one input ``observation``
(float32 ``[N, obs_dim]``) and one output ``action``, converted with ``tf2onnx.convert.from_function``
(``from_keras`` is broken with Keras 3, tf2onnx issues #2329/#2348). It contains the frozen observation
normalizer, the actor MLP, and either the Gaussian mean clipped to the action bounds (float32
``[N, act_dim]``) or the argmax of the logits (int64 ``[N]``).

Parity gate: before anything is written, onnxruntime runs the in-memory model (batched and one row at a
time, with the robot runtime's session options) on observations recorded by running the policy in its
task plus observations spread over the normalizer's statistics (mean ± k·std, also beyond the clip), and
compares with ``policy.tf_action``. Continuous error: max |a_onnx − a_tf|. Discrete error: the largest
TensorFlow-logit gap ``logit[a_tf] − logit[a_onnx]`` (0 when the actions agree or tie exactly). The
export passes when the error is ≤ ``tolerance``; otherwise :class:`ParityError` and no file is touched.
The file and its JSON sidecar are written to temporary files in the target directory and renamed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import tensorflow as tf
import tf2onnx

from export.errors import ParityError
from export.metadata import METADATA_KEY, PolicyMetadata, sidecar_path
from export.runtime import INPUT_NAME, OUTPUT_NAME, session_options
from trpo_tf.policy import Policy, load_policy
from trpo_tf.files import atomic_path
from trpo_tf.interrupts import deferred_interrupts, interrupt_point
from trpo_tf.run_dir import RunDir
from robots.tasks import EnvFactory  # after trpo_tf (TensorFlow, then OSMesa isolated; trpo_tf/headless.py)

OPSET = 17
MIN_PARITY = 1000  # the gate's promise: at least this many observations
BATCH_DIM = "N"


@dataclass(frozen=True)
class ParityReport:
    """What the gate measured."""

    max_abs_error: float
    n_observations: int
    n_recorded: int  # of which recorded in the simulator
    n_mismatched_actions: int  # discrete only: rows whose argmax differs (exact ties included)


@dataclass(frozen=True)
class ExportResult:
    """A written export: the files, the metadata, and the parity numbers."""

    path: Path
    sidecar: Path
    metadata: PolicyMetadata
    max_abs_error: float
    n_observations: int
    n_recorded: int
    n_mismatched_actions: int
    tolerance: float
    opset: int
    seconds: float


def export_onnx(run_dir: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None,
                n_parity: int = MIN_PARITY, tolerance: float = 1e-5) -> ExportResult:
    """Export the newest checkpoint of ``run_dir`` to ``out_path`` (default ``<run_dir>/policy.onnx``).
    Ctrl-C stops it between phases (:mod:`trpo_tf.interrupts`), never inside the checkpoint restore."""
    with deferred_interrupts():
        policy = load_policy(run_dir)
        interrupt_point()
        out = RunDir(run_dir).onnx if out_path is None else Path(out_path)
        return export_policy(policy, out, n_parity=n_parity, tolerance=tolerance)


def export_policy(policy: Policy, out_path: str | os.PathLike[str], n_parity: int = MIN_PARITY,
                  tolerance: float = 1e-5, seed: int = 0, opset: int = OPSET) -> ExportResult:
    """Convert, check (``onnx.checker`` + parity gate), then atomically write ``out_path`` and its sidecar.
    Ctrl-C is honoured between these phases, never inside TensorFlow's tracing or tf2onnx (which can swallow
    it or be left half-done: :mod:`trpo_tf.interrupts`); once the write has begun, the export completes."""
    if type(n_parity) is not int or n_parity < MIN_PARITY:
        raise ValueError(f"n_parity must be an integer >= {MIN_PARITY}, got {n_parity!r}")
    if not isinstance(tolerance, (int, float)) or not np.isfinite(tolerance):
        raise ValueError(f"tolerance must be a finite number, got {tolerance!r}")
    with deferred_interrupts():
        start = time.perf_counter()
        metadata = policy_metadata(policy)
        model = convert(policy, metadata, opset)
        interrupt_point()
        observations, n_recorded = parity_observations(policy, n_parity, seed)
        interrupt_point()
        report = check_parity(model, policy, observations, float(tolerance), n_recorded)
        interrupt_point()
        out = Path(out_path)
        write_atomic(model, metadata, out)
    return ExportResult(
        path=out, sidecar=sidecar_path(out), metadata=metadata, max_abs_error=report.max_abs_error,
        n_observations=report.n_observations, n_recorded=report.n_recorded,
        n_mismatched_actions=report.n_mismatched_actions, tolerance=float(tolerance), opset=opset,
        seconds=time.perf_counter() - start,
    )


def policy_metadata(policy: Policy) -> PolicyMetadata:
    """The metadata of ``policy``, from the plain data the learner hands over (``Policy.provenance``)."""
    facts = policy.provenance()
    return PolicyMetadata.for_trained_policy(facts.pop("run_info"), **facts)


def convert(policy: Policy, metadata: PolicyMetadata, opset: int = OPSET) -> onnx.ModelProto:
    """The checked in-memory ONNX model of ``policy.tf_action`` with ``metadata`` in ``metadata_props``."""
    spec = tf.TensorSpec([None, policy.obs_dim], tf.float32, name=INPUT_NAME)

    # A dict output makes tf2onnx name the graph output after its key.
    @tf.function(input_signature=[spec])
    def action_fn(observation: tf.Tensor) -> dict[str, tf.Tensor]:
        return {OUTPUT_NAME: policy.tf_action(observation)}

    model, _ = tf2onnx.convert.from_function(action_fn, input_signature=action_fn.input_signature, opset=opset)
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = BATCH_DIM  # tf2onnx names it "unk__N"
    names = ([i.name for i in model.graph.input], [o.name for o in model.graph.output])
    if names != ([INPUT_NAME], [OUTPUT_NAME]):
        raise RuntimeError(f"tf2onnx produced inputs/outputs {names}, expected ([{INPUT_NAME!r}], [{OUTPUT_NAME!r}])")
    model.doc_string = f"trpo-tf policy for {metadata.task} ({metadata.gym_id}): normalize → actor → " + (
        "argmax" if metadata.discrete else "mean clipped to the action bounds")
    onnx.helper.set_model_props(model, {METADATA_KEY: metadata.to_json()})
    onnx.checker.check_model(model, full_check=True)
    return model


def parity_observations(policy: Policy, n: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """``n`` float32 observations: half recorded in the task, half spread by the normalizer's statistics.
    Returns ``(observations, n_recorded)``."""
    n_recorded = n // 2
    recorded = record_observations(policy, n_recorded, seed)
    spread = normalizer_spread(policy, n - n_recorded, seed)
    return np.concatenate([recorded, spread]).astype(np.float32), n_recorded


def record_observations(policy: Policy, n: int, seed: int = 0) -> np.ndarray:
    """``n`` observations met by the deterministic policy in its own task (episode k seeded ``seed + k``)."""
    env = EnvFactory(policy.info.gym_id, dict(policy.info.env_kwargs))()
    out = np.empty((n, policy.obs_dim), np.float32)
    try:
        i = episode = 0
        while i < n:
            obs, _ = env.reset(seed=seed + episode)
            episode += 1
            done = False
            while not done and i < n:
                out[i] = obs
                i += 1
                obs, _, terminated, truncated, _ = env.step(policy.act(np.asarray(obs, np.float32)))
                done = terminated or truncated
    finally:
        env.close()
    return out


def normalizer_spread(policy: Policy, n: int, seed: int = 0) -> np.ndarray:
    """``mean + z·std`` with z from N(0, 1), U(±1.5·clip) and rows at ±k·std for k up to 2·clip (random
    signs per entry): typical inputs, inputs where the normalizer's clip is active, and far outliers."""
    normalizer = policy.actor.normalizer
    mean, inv_std = normalizer.numpy_params()
    std = 1.0 / inv_std.astype(np.float64)
    clip = float(normalizer.clip)
    rng = np.random.default_rng(seed)
    d = policy.obs_dim
    n_normal, n_uniform = n // 3, n // 3
    n_grid = n - n_normal - n_uniform
    levels = np.array([0.0, 0.5, 1.0, 3.0, clip - 0.5, clip, clip + 0.5, 1.5 * clip, 2.0 * clip])
    z = np.concatenate([
        rng.standard_normal((n_normal, d)),
        rng.uniform(-1.5 * clip, 1.5 * clip, (n_uniform, d)),
        levels[np.arange(n_grid) % len(levels)][:, None] * rng.choice([-1.0, 1.0], (n_grid, d)),
    ])
    return (mean.astype(np.float64) + z * std).astype(np.float32)


def check_parity(model: onnx.ModelProto, policy: Policy, observations: np.ndarray, tolerance: float,
                 n_recorded: int = 0) -> ParityReport:
    """Compare onnxruntime (batched and batch-1) with ``policy.tf_action``; raise :class:`ParityError`
    when the error (see the module docstring) exceeds ``tolerance``."""
    obs = np.ascontiguousarray(observations, np.float32)
    n = len(obs)
    session = ort.InferenceSession(model.SerializeToString(), sess_options=session_options(1),
                                   providers=["CPUExecutionProvider"])
    batched = session.run([OUTPUT_NAME], {INPUT_NAME: obs})[0]
    rows = np.concatenate([session.run([OUTPUT_NAME], {INPUT_NAME: obs[i:i + 1]})[0] for i in range(n)])
    expected = policy.tf_action(tf.constant(obs)).numpy()
    want = (np.int64, (n,)) if policy.discrete else (np.float32, (n, policy.act_dim))
    for got in (batched, rows):
        if (got.dtype, got.shape) != want:
            raise ParityError(np.inf, tolerance, n, f" (ONNX output is {got.dtype}{got.shape}, "
                                                    f"TensorFlow's is {np.dtype(want[0])}{want[1]})")
    mismatched = 0
    if policy.discrete:
        logits = policy.actor(tf.constant(obs)).logits_parameter().numpy().astype(np.float64)
        best = np.take_along_axis(logits, expected[:, None], axis=1)[:, 0]
        errors = []
        for got in (batched, rows):
            mismatched = max(mismatched, int((got != expected).sum()))
            chosen = np.take_along_axis(logits, got[:, None], axis=1)[:, 0]
            errors.append(np.max(best - chosen))
        error = float(max(errors))
    else:
        diffs = [np.abs(got.astype(np.float64) - expected.astype(np.float64)) for got in (batched, rows)]
        error = float(max(np.max(np.where(np.isnan(d), np.inf, d)) for d in diffs))
    if not error <= tolerance:
        detail = f" ({mismatched} differing actions)" if policy.discrete else ""
        raise ParityError(error, tolerance, n, detail)
    return ParityReport(max_abs_error=error, n_observations=n, n_recorded=n_recorded,
                        n_mismatched_actions=mismatched)


def write_atomic(model: onnx.ModelProto, metadata: PolicyMetadata, out_path: Path) -> None:
    """Write the model and ``<out>.json`` through temporary files in the same directory, then rename, the
    ONNX file first (it is the authoritative copy of the metadata): a crash or an error leaves the previous
    files, never half-written ones (:func:`trpo_tf.files.atomic_path`)."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(sidecar_path(out_path)) as sidecar_tmp, atomic_path(out_path) as onnx_tmp:
        sidecar_tmp.write_text(metadata.to_json(indent=2) + "\n", encoding="utf-8")
        onnx_tmp.write_bytes(model.SerializeToString())
