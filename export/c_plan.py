"""Lower an exported trpo-tf ONNX policy to a plan for plain C99 (``policy.h`` + ``policy.c``).

The input is the ONNX file written by :mod:`export.onnx` (read with the ``onnx`` package), not the
TensorFlow run: the C code is a second rendering of the very graph the robot runtime executes.
Only a single chain ``observation → … → action`` of these standard operators is accepted (what
tf2onnx emits for our Gaussian and Categorical actors with tanh/relu/elu, plus the equivalent
``Gemm``/``Clip``/``Identity`` forms); every other graph is refused with :class:`UnsupportedGraphError`:

* element-wise with a constant operand (scalar or one value per element): ``Sub``, ``Add``, ``Mul``,
  ``Div``, ``Min``, ``Max``, ``Clip`` — the frozen normalizer, biases, the clip to the bounds;
* ``MatMul``/``Gemm`` with a constant weight matrix — the dense layers;
* ``Tanh``, ``Relu``, ``Elu`` — the hidden activations (our own branch-free tanh, libm ``expm1f``);
* ``ArgMax`` over the last axis as the final node — the discrete head (adding an integer 0 after it, as
  export/builders.py does, is accepted as the identity).

Generated code (see docs/runtime.md): C99, ``static const`` weights (flash), two stack buffers of the
widest layer, no heap, no writable globals, libm at most. Consecutive element-wise nodes are fused into
one loop; a dense layer accumulates a whole output row per group of four inputs
(``y += x[i]·W[i,:] + … + x[i+3]·W[i+3,:]``), the loop order gcc vectorizes at ``-O2`` (FACTS.md: row
dot products do not vectorize without ``-ffast-math``); see :mod:`export.c_source`.
``<prefix>_act`` refuses a non-finite observation (returns ``<PREFIX>_ERR_OBS_NONFINITE``, action
untouched), refuses a non-finite network output the same way, and clips a continuous action once more
into the metadata bounds rounded inward to float32, so an action is never outside the robot's limits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Union

import numpy as np
import onnx
from onnx import numpy_helper

from export.errors import UnsupportedGraphError
from export.metadata import PolicyMetadata
from export.runtime import INPUT_NAME, OUTPUT_NAME, float32_bounds

ELEMENTWISE = ("Sub", "Add", "Mul", "Div", "Min", "Max", "Clip", "Tanh", "Relu", "Elu", "Identity")
SUPPORTED_OPS = tuple(sorted(ELEMENTWISE + ("MatMul", "Gemm", "ArgMax")))


# ---------------------------------------------------------------------------------------------- the plan
Operand = Union[float, np.ndarray, None]  # a scalar, one float32 per element, or nothing (activations)


@dataclass(frozen=True)
class Pointwise:
    """A fused run of element-wise ops on a vector of ``width`` floats; ops are ``(name, operand)``."""

    width: int
    ops: tuple[tuple[str, Operand], ...]


@dataclass(frozen=True)
class Dense:
    """``y = x @ weight`` with ``weight`` float32 ``[in, out]`` (ONNX MatMul layout)."""

    weight: np.ndarray


@dataclass(frozen=True)
class CPlan:
    """What the C code computes: ``stages`` map the observation to the head (the pre-ArgMax logits for a
    discrete policy, the clipped action for a continuous one)."""

    metadata: PolicyMetadata
    stages: tuple[Pointwise | Dense, ...]
    head_dim: int
    argmax: bool
    head_name: str  # the ONNX tensor the head corresponds to (the parity gate reads it)
    onnx_sha256: str

    def uses(self, op: str) -> bool:
        """Whether an element-wise ``op`` (e.g. "tanh") occurs in the plan."""
        return any(o == op for s in self.stages if isinstance(s, Pointwise) for o, _ in s.ops)

    @property
    def build_id(self) -> str:
        """32 bits of the ONNX file's SHA-256: ties ``policy.c`` to its ``policy.h``."""
        return "0x" + self.onnx_sha256[:8] + "UL"

    @property
    def max_width(self) -> int:
        widths = [self.metadata.obs_dim, self.head_dim]
        widths += [s.weight.shape[1] for s in self.stages if isinstance(s, Dense)]
        return max(widths)

    @property
    def const_bytes(self) -> int:
        """Bytes of ``static const`` float data (weights, vector operands, bounds) the C file holds."""
        n = sum(s.weight.size for s in self.stages if isinstance(s, Dense))
        n += sum(op.size for s in self.stages if isinstance(s, Pointwise) for _, op in s.ops
                 if isinstance(op, np.ndarray) and not uniform(op))
        return 4 * (n + (0 if self.argmax else 2 * self.metadata.act_dim))


def plan_from_model(model: onnx.ModelProto) -> CPlan:
    """Check the graph and lower it to a :class:`CPlan`; :class:`UnsupportedGraphError` if it is not ours."""
    props = {p.key: p.value for p in model.metadata_props}
    try:
        meta = PolicyMetadata.from_props(props)
    except ValueError as e:
        raise UnsupportedGraphError(f"not a trpo-tf policy file: {e}") from None
    graph = model.graph
    foreign = sorted({f"{o.domain}:{o.version}" for o in model.opset_import if o.domain not in ("", "ai.onnx",
                                                                                                "ai.onnx.ml")})
    if foreign:
        raise UnsupportedGraphError(f"the graph imports custom operator sets {foreign}")
    if [i.name for i in graph.input if i.name not in {t.name for t in graph.initializer}] != [INPUT_NAME] \
            or [o.name for o in graph.output] != [OUTPUT_NAME]:
        raise UnsupportedGraphError(f"expected one input {INPUT_NAME!r} and one output {OUTPUT_NAME!r}, got "
                                    f"{[i.name for i in graph.input]} → {[o.name for o in graph.output]}")
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    stages: list[Pointwise | Dense] = []
    pending: list[tuple[str, Operand]] = []
    width, current, argmax = meta.obs_dim, INPUT_NAME, False
    head_name = current

    def flush() -> None:
        if pending:
            stages.append(Pointwise(width, tuple(pending)))
            pending.clear()

    for node in graph.node:
        where = f"node {node.name or node.op_type!r} ({node.op_type})"
        if node.domain not in ("", "ai.onnx") or node.op_type not in SUPPORTED_OPS:
            raise UnsupportedGraphError(f"unsupported operator {node.op_type!r} in {where}; the C export "
                                        f"handles {', '.join(SUPPORTED_OPS)}")
        data = [i for i in node.input if i and i not in consts]
        if argmax:
            if node.op_type in ("Add", "Sub") and data == [current] and _is_zero_index(node, consts):
                current = node.output[0]  # adding an integer 0 to the index is the identity
                continue
            raise UnsupportedGraphError(f"{where} follows ArgMax; ArgMax must be the last node")
        if data != [current] or len(node.output) != 1:
            raise UnsupportedGraphError(f"{where} is not part of one chain from {INPUT_NAME!r} (inputs "
                                        f"{list(node.input)}, expected the output of the previous node)")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        op = node.op_type
        if op in ("MatMul", "Gemm"):
            flush()
            weight, extra = _dense(node, consts, attrs, width, where)
            stages.append(Dense(weight))
            width = weight.shape[1]
            pending.extend(extra)
        elif op == "ArgMax":
            if attrs.get("axis", 0) not in (1, -1) or attrs.get("keepdims", 1) != 0 \
                    or attrs.get("select_last_index", 0) != 0:
                raise UnsupportedGraphError(f"{where}: only ArgMax(axis=1, keepdims=0) is supported, got {attrs}")
            flush()
            head_name, argmax = current, True
        else:
            pending.extend(_pointwise(node, consts, attrs, width, where))
        current = node.output[0]
    flush()
    if current != OUTPUT_NAME:
        raise UnsupportedGraphError(f"the chain ends in {current!r}, not in the output {OUTPUT_NAME!r}")
    if not argmax:
        head_name = OUTPUT_NAME
    want = meta.act_dim
    if argmax != meta.discrete or width != want:
        raise UnsupportedGraphError(f"the graph computes {'an ArgMax over' if argmax else 'a vector of'} {width} "
                                    f"values but the metadata says {'discrete' if meta.discrete else 'continuous'} "
                                    f"act_dim {want}")
    return CPlan(meta, tuple(stages), width, argmax, head_name,
                 hashlib.sha256(model.SerializeToString()).hexdigest())


def _dense(node: onnx.NodeProto, consts: dict[str, np.ndarray], attrs: dict, width: int,
           where: str) -> tuple[np.ndarray, list[tuple[str, Operand]]]:
    """(weight [in, out], element-wise ops that follow) of a MatMul/Gemm whose data input comes first."""
    if node.input[0] not in consts and len(node.input) >= 2 and node.input[1] in consts:
        w = _float32(consts[node.input[1]], where)
    else:
        raise UnsupportedGraphError(f"{where}: expected (data, constant weight) inputs, got {list(node.input)}")
    extra: list[tuple[str, Operand]] = []
    if node.op_type == "Gemm":
        if attrs.get("transA", 0):
            raise UnsupportedGraphError(f"{where}: Gemm with transA=1 is not supported")
        w = w.T if attrs.get("transB", 0) else w
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        if alpha != 1.0:
            extra.append(("mul", np.float32(alpha)))
        if len(node.input) > 2 and node.input[2]:
            c = _float32(consts[node.input[2]], where) * np.float32(beta)
            extra.append(("add", _operand(c, w.shape[1] if w.ndim == 2 else -1, where)))
    if w.ndim != 2 or w.shape[0] != width:
        raise UnsupportedGraphError(f"{where}: weight of shape {list(w.shape)} does not take a vector of {width}")
    return np.ascontiguousarray(w, np.float32), extra


def _pointwise(node: onnx.NodeProto, consts: dict[str, np.ndarray], attrs: dict, width: int,
               where: str) -> list[tuple[str, Operand]]:
    op = node.op_type
    if op in ("Tanh", "Relu", "Identity"):
        return [] if op == "Identity" else [(op.lower(), None)]
    if op == "Elu":
        return [("elu", np.float32(attrs.get("alpha", 1.0)))]
    if op == "Clip":
        lo = attrs.get("min") if len(node.input) < 2 or not node.input[1] else consts[node.input[1]]
        hi = attrs.get("max") if len(node.input) < 3 or not node.input[2] else consts[node.input[2]]
        out = [] if lo is None else [("max", _operand(_float32(np.asarray(lo), where), width, where))]
        return out + ([] if hi is None else [("min", _operand(_float32(np.asarray(hi), where), width, where))])
    const = [i for i in node.input if i in consts]
    if len(node.input) != 2 or len(const) != 1 or (op in ("Sub", "Div") and node.input[1] not in consts):
        raise UnsupportedGraphError(f"{where}: expected (data, constant) inputs, got {list(node.input)}")
    return [(op.lower(), _operand(_float32(consts[const[0]], where), width, where))]


def _is_zero_index(node: onnx.NodeProto, consts: dict[str, np.ndarray]) -> bool:
    values = [consts[i] for i in node.input if i in consts]
    return len(values) == 1 and values[0].dtype.kind == "i" and values[0].size == 1 and not values[0].any()


def _float32(value: np.ndarray, where: str) -> np.ndarray:
    if value.dtype != np.float32:
        raise UnsupportedGraphError(f"{where}: constant of type {value.dtype}, expected float32")
    if not np.isfinite(value).all():
        raise UnsupportedGraphError(f"{where}: constant holds NaN/Inf")
    return value


def _operand(value: np.ndarray, width: int, where: str) -> Operand:
    """A scalar, or a float32 vector of ``width`` values (shapes ``[]``, ``[1]``, ``[w]``, ``[1, w]``)."""
    flat = np.asarray(value, np.float32).reshape(-1)
    if value.ndim > 2 or (value.ndim == 2 and value.shape[0] != 1) or flat.size not in (1, width):
        raise UnsupportedGraphError(f"{where}: constant of shape {list(value.shape)} does not broadcast "
                                    f"element-wise over a vector of {width}")
    return np.float32(flat[0]) if flat.size == 1 else flat.copy()


def uniform(v: np.ndarray) -> bool:
    """All elements bit-identical: the C code uses one literal instead of an array."""
    bits = np.ascontiguousarray(v, np.float32).view(np.uint32)
    return bool(np.all(bits == bits[0]))


def safe_bounds(meta: PolicyMetadata) -> tuple[np.ndarray, np.ndarray]:
    """The metadata bounds rounded inward to float32 (the runtime's :func:`float32_bounds`)."""
    assert meta.action_low is not None and meta.action_high is not None
    return float32_bounds(meta.action_low, meta.action_high)
