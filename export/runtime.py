"""Run an exported trpo-tf policy on a robot: numpy + onnxruntime only, no TensorFlow.

``OnnxPolicy(path).act(obs)`` returns an action that is always inside the policy's bounds. Inputs are
checked (shape ``(obs_dim,)`` or ``(N, obs_dim)``, real numeric dtype) and a ``ValueError`` names what
was expected. Observations containing NaN/±Inf (also float64 values beyond the float32 range, which
become ±Inf) are handled by ``on_invalid``:

* ``"raise"`` — ``ValueError``. An invalid *output* (non-finite, or a discrete index out of range) also
  raises: this mode never substitutes an action silently.
* ``"hold"``  — return the last valid action of the same stream (single observations form one stream;
  row i of batches of the same size N forms stream i), or the safe action if there is none yet.
* ``"zero"``  — return the safe action.

The *safe action* is the zero action clipped into ``[action_low, action_high]`` for continuous policies,
and action index 0 for discrete ones. Invalid outputs are replaced the same way in "hold"/"zero" mode.
Counters ``n_invalid_inputs`` / ``n_invalid_outputs`` record each substitution. The bounds are the
metadata's rounded *inward* to float32 (:func:`float32_bounds`), so a float32 action never exceeds the
exact limits by an ulp.

Batch-1 hot path: the input and output are bound once to preallocated numpy buffers with an onnxruntime
``IOBinding`` (no per-call dicts or allocations) and the output is checked and clipped in place.
The hot path emits no numpy warnings (they would become exceptions under ``-W error``).
One ``OnnxPolicy`` must not be shared between threads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from export.metadata import PolicyMetadata

INPUT_NAME = "observation"
OUTPUT_NAME = "action"
ON_INVALID = ("raise", "hold", "zero")
_NUMERIC_KINDS = "fiu"  # float, signed int, unsigned int; bool/complex/str/object are rejected


class PolicyFileError(ValueError):
    """The file is not a loadable trpo-tf ONNX policy (not ONNX, truncated, empty, no or bad metadata, wrong
    graph). Its message is one line naming the file."""


def session_options(intra_op_threads: int = 1) -> ort.SessionOptions:
    """Latency-oriented settings: few threads, sequential execution, all graph optimizations."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts


class OnnxPolicy:
    """An exported policy loaded with onnxruntime; see the module docstring for the guarantees."""

    def __init__(self, path: str | os.PathLike[str], intra_op_threads: int = 1, on_invalid: str = "raise"):
        if on_invalid not in ON_INVALID:
            raise ValueError(f"on_invalid must be one of {ON_INVALID}, got {on_invalid!r}")
        if type(intra_op_threads) is not int or intra_op_threads < 1:
            raise ValueError(f"intra_op_threads must be an integer >= 1, got {intra_op_threads!r}")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no ONNX policy file at {self.path}")
        try:
            self.session = ort.InferenceSession(
                str(self.path),
                sess_options=session_options(intra_op_threads),
                providers=["CPUExecutionProvider"],
            )
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            detail = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise PolicyFileError(f"{self.path} is not a loadable ONNX model: {detail}") from None
        try:
            self.metadata = PolicyMetadata.from_props(self.session.get_modelmeta().custom_metadata_map)
        except ValueError as e:
            raise PolicyFileError(f"{self.path}: {e}") from None
        self.on_invalid = on_invalid
        m = self.metadata
        self.obs_dim, self.act_dim, self.discrete = m.obs_dim, m.act_dim, m.discrete
        try:
            self._check_graph()
        except ValueError as e:
            raise PolicyFileError(f"{self.path}: {e}") from None

        if self.discrete:
            self.action_low = self.action_high = None
            self._n_actions = int(m.act_dim)
            self._safe_one: Any = 0
            out_dtype, out_shape = np.int64, [1]
        else:
            self.action_low, self.action_high = float32_bounds(m.action_low, m.action_high)
            for a in (self.action_low, self.action_high):
                a.flags.writeable = False
            self._safe_one = np.clip(np.zeros(self.act_dim, np.float32), self.action_low, self.action_high)
            self._safe_one.flags.writeable = False
            out_dtype, out_shape = np.float32, [1, self.act_dim]
        self.n_invalid_inputs = 0
        self.n_invalid_outputs = 0

        # Batch-1 buffers bound once; ``_in_row``/``_out_row`` are views used by the hot path.
        self._in = np.zeros((1, self.obs_dim), np.float32)
        self._out = np.zeros(out_shape, out_dtype)
        self._in_row, self._out_row = self._in[0], self._out.reshape(-1) if self.discrete else self._out[0]
        self._binding = self.session.io_binding()
        self._binding.bind_input(INPUT_NAME, "cpu", 0, np.float32, [1, self.obs_dim], self._in.ctypes.data)
        self._binding.bind_output(OUTPUT_NAME, "cpu", 0, out_dtype, out_shape, self._out.ctypes.data)
        self._out_names = [OUTPUT_NAME]
        self._shape_one = (self.obs_dim,)
        self.reset()
        try:
            self._probe()
        except ValueError as e:
            raise PolicyFileError(f"{self.path}: {e}") from None

    # ------------------------------------------------------------------ public API

    @property
    def safe_action(self) -> np.ndarray | int:
        """The zero action clipped into the bounds (continuous) or action 0 (discrete)."""
        return 0 if self.discrete else self._safe_one.copy()

    def reset(self) -> None:
        """Forget the actions remembered by ``on_invalid="hold"`` (e.g. at the start of an episode)."""
        self._held_one: Any = 0 if self.discrete else self._safe_one.copy()
        self._held_batch: np.ndarray | None = None

    def act(self, obs: Any) -> np.ndarray | int:
        """Action for one observation ``(obs_dim,)`` → ``(act_dim,)`` float32 (or an int if discrete),
        or for a batch ``(N, obs_dim)`` → ``(N, act_dim)`` float32 (or ``(N,)`` int64)."""
        if type(obs) is np.ndarray and obs.dtype == np.float32 and obs.shape == self._shape_one:
            np.copyto(self._in_row, obs)  # hot path: no conversion, no allocation
            return self._act_one()
        arr = self._as_array(obs)
        if arr.ndim == 1:
            with np.errstate(over="ignore", invalid="ignore"):
                np.copyto(self._in_row, arr, casting="unsafe")
            return self._act_one()
        return self._act_batch(arr)

    __call__ = act

    # ------------------------------------------------------------------ single observation

    def _act_one(self) -> np.ndarray | int:
        row = self._in_row
        if not np.isfinite(row).all():
            self.n_invalid_inputs += 1
            if self.on_invalid == "raise":
                bad = np.flatnonzero(~np.isfinite(row)).tolist()
                raise ValueError(f"observation has NaN/Inf (or beyond float32 range) at index(es) {bad}; "
                                 "on_invalid='raise'")
            return self._fallback_one()
        self.session.run_with_iobinding(self._binding)
        out = self._out_row
        if self.discrete:
            action = int(out[0])
            if 0 <= action < self._n_actions:
                self._held_one = action
                return action
            return self._invalid_output_one(f"action index {action} outside [0, {self._n_actions})")
        if not np.isfinite(out).all():
            return self._invalid_output_one(f"non-finite action {out.tolist()}")
        np.minimum(out, self.action_high, out=out)  # defense in depth: the graph clips too
        np.maximum(out, self.action_low, out=out)
        if self.on_invalid == "hold":
            np.copyto(self._held_one, out)
        return out.copy()

    def _invalid_output_one(self, what: str) -> np.ndarray | int:
        self.n_invalid_outputs += 1
        if self.on_invalid == "raise":
            raise ValueError(f"the policy produced an invalid output ({what}); on_invalid='raise'")
        return self._fallback_one()

    def _fallback_one(self) -> np.ndarray | int:
        held = self._held_one if self.on_invalid == "hold" else self._safe_one
        return held if self.discrete else held.copy()

    # ------------------------------------------------------------------ batches

    def _act_batch(self, arr: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            x = np.asarray(arr, dtype=np.float32)
        ok_in = np.isfinite(x).all(axis=1)
        n_bad_in = int(x.shape[0] - ok_in.sum())
        if n_bad_in:
            self.n_invalid_inputs += n_bad_in
            if self.on_invalid == "raise":
                rows = np.flatnonzero(~ok_in).tolist()
                raise ValueError(f"observation rows {rows} have NaN/Inf (or beyond float32 range); "
                                 "on_invalid='raise'")
            x = np.where(ok_in[:, None], x, np.float32(0.0))  # run something finite, replaced below
        out = self.session.run(self._out_names, {INPUT_NAME: np.ascontiguousarray(x)})[0]
        if self.discrete:
            ok_out = (out >= 0) & (out < self._n_actions)
        else:
            ok_out = np.isfinite(out).all(axis=1)  # before clipping: ±inf is invalid, not "at the bound"
            np.clip(out, self.action_low, self.action_high, out=out)
        bad_out = ok_in & ~ok_out
        if bad_out.any():
            self.n_invalid_outputs += int(bad_out.sum())
            if self.on_invalid == "raise":
                rows = np.flatnonzero(bad_out).tolist()
                raise ValueError(f"the policy produced invalid actions for rows {rows} "
                                 "(non-finite or index out of range); on_invalid='raise'")
        ok = ok_in & ok_out
        if self.on_invalid == "hold":
            if self._held_batch is None or self._held_batch.shape[0] != out.shape[0]:
                self._held_batch = np.stack([self._safe_batch_row()] * out.shape[0])
            out[~ok] = self._held_batch[~ok]
            self._held_batch[ok] = out[ok]
        elif not ok.all():
            out[~ok] = self._safe_batch_row()
        return out

    def _safe_batch_row(self) -> np.ndarray:
        return np.int64(0) if self.discrete else self._safe_one

    # ------------------------------------------------------------------ checks

    def _as_array(self, obs: Any) -> np.ndarray:
        """Convert and validate shape/dtype; everything else is a ``ValueError``."""
        d = self.obs_dim
        expected = f"expected a real numeric array of shape ({d},) or (N, {d}) with N >= 1"
        try:
            arr = np.asarray(obs)
        except Exception as e:  # ragged lists, objects whose __array__ fails, ...
            raise ValueError(f"observation cannot be converted to an array ({e}); {expected}") from None
        if arr.dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(
                f"observation has dtype {arr.dtype} (bool/complex/str/object are rejected); {expected}"
            )
        if (arr.ndim == 1 and arr.shape[0] == self.obs_dim) or (
            arr.ndim == 2 and arr.shape[1] == self.obs_dim and arr.shape[0] >= 1
        ):
            return arr
        raise ValueError(f"observation has shape {arr.shape}; {expected}")

    def _check_graph(self) -> None:
        """The graph's declared input/output must match the metadata (the exporter's contract)."""
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        if [i.name for i in ins] != [INPUT_NAME] or [o.name for o in outs] != [OUTPUT_NAME]:
            raise ValueError(
                f"{self.path}: expected one input {INPUT_NAME!r} and one output {OUTPUT_NAME!r}, "
                f"got inputs {[i.name for i in ins]} and outputs {[o.name for o in outs]}"
            )
        _check_arg(self.path, ins[0], "tensor(float)", [None, self.obs_dim])
        if self.discrete:
            _check_arg(self.path, outs[0], "tensor(int64)", [None])
        else:
            _check_arg(self.path, outs[0], "tensor(float)", [None, self.act_dim])

    def _probe(self) -> None:
        """One batch-of-2 run at load time: checks the real output shape/dtype and warms the session up."""
        try:
            out = self.session.run(self._out_names, {INPUT_NAME: np.zeros((2, self.obs_dim), np.float32)})[0]
        except Exception as e:
            raise ValueError(
                f"{self.path}: the graph fails on a (2, {self.obs_dim}) float32 input: {e}"
            ) from None
        want_shape, want_dtype = ((2,), np.int64) if self.discrete else ((2, self.act_dim), np.float32)
        if out.shape != want_shape or out.dtype != want_dtype:
            raise ValueError(f"{self.path}: output for 2 observations is {out.dtype}{out.shape}, "
                             f"expected {np.dtype(want_dtype)}{want_shape}")
        for _ in range(3):
            self.session.run_with_iobinding(self._binding)


def float32_bounds(low: tuple[float, ...], high: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """float32 bounds rounded *inward*, so every float32 action inside them is inside the exact
    (float64) metadata bounds; e.g. high 0.8 becomes 0.79999995f, not 0.8f = 0.800000012. Where
    low == high is not representable in float32 no float32 value fits and the nearest one is used."""
    lo64, hi64 = np.asarray(low, np.float64), np.asarray(high, np.float64)
    lo, hi = lo64.astype(np.float32), hi64.astype(np.float32)
    lo = np.where(lo < lo64, np.nextafter(lo, np.float32(np.inf)), lo)
    hi = np.where(hi > hi64, np.nextafter(hi, np.float32(-np.inf)), hi)
    crossed = lo > hi
    lo[crossed] = hi[crossed] = lo64[crossed].astype(np.float32)
    return lo, hi


def _check_arg(path: Path, arg: Any, dtype: str, dims: list[int | None]) -> None:
    """``dims``: None = must be dynamic (batch axis); an int must match when the graph states one."""
    shape = list(arg.shape) if arg.shape is not None else []
    ok = arg.type == dtype and len(shape) == len(dims)
    for got, want in zip(shape, dims):
        if want is None:
            ok = ok and not isinstance(got, int)  # symbolic name or None: the batch axis N is dynamic
        else:
            ok = ok and (got == want or not isinstance(got, int))
    if not ok:
        want_str = ", ".join("N" if d is None else str(d) for d in dims)
        raise ValueError(
            f"{path}: {arg.name!r} is {arg.type} {shape}, metadata requires {dtype} [{want_str}]"
        )
