"""The text of ``policy.h`` and ``policy.c`` for a :class:`export.c_plan.CPlan` (see that module).

Kept apart from the graph lowering so each file stays one concern: this one only prints C.
"""

from __future__ import annotations

import re

import numpy as np
import onnx

from export.c_plan import CPlan, Dense, Operand, plan_from_model, safe_bounds, uniform

DEFAULT_PREFIX = "trpo_policy"
PER_LINE = 8  # floats per line in the weight tables
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def c_float(x: float) -> str:
    """A C float literal that round-trips float32 exactly (``%.9g``)."""
    s = f"{float(np.float32(x)):.9g}"
    return (s if any(c in s for c in ".en") else s + ".0") + "f"


def c_string(s: str) -> str:
    """A C string literal body: printable ASCII kept, everything else as octal escapes."""
    out = []
    for b in s.encode("utf-8"):
        ch = chr(b)
        out.append("\\" + ch if ch in '"\\' else ch if 32 <= b < 127 and ch != "?" else f"\\{b:03o}")
    return "".join(out)


def comment(s: str) -> str:
    """Text safe inside a ``/* */`` comment, in ASCII (non-ASCII characters become ``<U+XXXX>``)."""
    s = s.replace("*/", "* /").replace("/*", "/ *").replace("\n", " ")
    return "".join(c if 32 <= ord(c) < 127 else f"<U+{ord(c):04X}>" for c in s)


def macro_name(name: str) -> str:
    """An observation field's name as the middle of a macro name (``root_z`` → ``ROOT_Z``)."""
    return re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") or "FIELD"


def check_prefix(prefix: str) -> str:
    """The symbol prefix, or ``ValueError`` unless it is a short lowercase C identifier."""
    if not _IDENT.match(prefix) or len(prefix) > 40:
        raise ValueError(f"the C name prefix must be a lowercase C identifier of at most 40 characters "
                         f"([a-z_][a-z0-9_]*), got {prefix!r}")
    return prefix


def generate(model: onnx.ModelProto, prefix: str = DEFAULT_PREFIX) -> tuple[str, str, CPlan]:
    """``(policy.h text, policy.c text, plan)`` for ``model``; raises :class:`UnsupportedGraphError`."""
    plan = plan_from_model(model)
    prefix = check_prefix(prefix)
    header, source = render_header(plan, prefix), render_source(plan, prefix)
    for text in (header, source):
        text.encode("ascii")  # any toolchain reads it; a non-ASCII character here is a bug
    return header, source, plan


def _names(prefix: str) -> dict[str, str]:
    return {"p": prefix, "P": prefix.upper()}


def render_header(plan: CPlan, prefix: str) -> str:
    """``policy.h``: the API, return codes, and the ONNX metadata as macros and comments."""
    m, n = plan.metadata, _names(prefix)
    p, P = n["p"], n["P"]
    rows, macros, seen = [], [], set()
    index = 0
    for field in m.obs_layout:
        span = f"{index}" if field.size == 1 else f"{index}-{index + field.size - 1}"
        rows.append(f" *   {span:<8} {comment(field.name)} [{comment(field.unit)}]"
                    + (f"  {comment(field.description)}" if field.description else ""))
        name = macro_name(field.name)
        while name in seen:
            name += "_"
        seen.add(name)
        macros.append(f"#define {P}_OBS_{name}_OFFSET {index}\n#define {P}_OBS_{name}_SIZE {field.size}")
        index += field.size
    if m.discrete:
        api = (f"int {p}_act(const float obs[{P}_OBS_DIM], int *action);",
               f" *   Writes the index of the most likely action, 0 <= *action < {P}_N_ACTIONS (ties: the lowest\n"
               f" *   index, like ONNX ArgMax).")
        action_doc = f" * Action: one index in [0, {m.n_actions}) (a discrete policy: the ArgMax of the logits)."
        action_macros = f"#define {P}_DISCRETE 1\n#define {P}_N_ACTIONS {m.n_actions}\n#define {P}_ACT_DIM 1"
        bounds_decl = ""
    else:
        lo, hi = safe_bounds(m)
        api = (f"int {p}_act(const float obs[{P}_OBS_DIM], float action[{P}_ACT_DIM]);",
               f" *   Writes act_dim floats, each inside [{p}_action_low[i], {p}_action_high[i]] (the metadata\n"
               f" *   bounds rounded inward to float32).")
        action_doc = " * Action bounds (metadata, float64):\n" + "\n".join(
            f" *   {i:<3} [{a!r}, {b!r}]" for i, (a, b) in enumerate(zip(m.action_low, m.action_high)))
        action_macros = (f"#define {P}_DISCRETE 0\n#define {P}_ACT_DIM {m.act_dim}\n"
                         f"#define {P}_ACTION_LOW_INIT {{ {', '.join(c_float(v) for v in lo)} }}\n"
                         f"#define {P}_ACTION_HIGH_INIT {{ {', '.join(c_float(v) for v in hi)} }}")
        bounds_decl = (f"extern const float {p}_action_low[{P}_ACT_DIM];   /* = {P}_ACTION_LOW_INIT */\n"
                       f"extern const float {p}_action_high[{P}_ACT_DIM];  /* = {P}_ACTION_HIGH_INIT */\n")
    period_ns = int(round(1e9 / m.control_hz))
    head = "ArgMax" if m.discrete else "mean clipped to the bounds"
    layers = " -> ".join(str(s.weight.shape[1]) for s in plan.stages if isinstance(s, Dense))
    return f"""/* policy.h: trpo-tf policy for task "{comment(m.task)}" ({comment(m.gym_id)}) as plain C99.
 * Generated by trpo-tf {comment(m.package_version)} (export/c_export.py) from the ONNX file with SHA-256
 * {plan.onnx_sha256}. Do not edit: re-export instead.
 *
 * {api[0]}
 *   Returns {P}_OK (0) and writes the action of the deterministic policy (the same graph as the ONNX
 *   file: normalization with clip, MLP {m.obs_dim} -> {layers}, {head}).
{api[1]}
 *   Or returns a negative code and leaves the action untouched:
 *     {P}_ERR_OBS_NONFINITE  an observation entry is NaN or +/-Inf (nothing is computed);
 *     {P}_ERR_OUT_NONFINITE  the network produced NaN/Inf (a guard; not seen with finite inputs).
 *   Pure function: no heap, no global state written, libm only; reentrant and thread-safe.
 *   Flash: {plan.const_bytes} bytes of const float data; stack: two float[{plan.max_width}] buffers.
 *
 * Observation layout ({m.obs_dim} floats; index, name [unit], description):
{chr(10).join(rows)}
{action_doc}
 *
 * Trained {m.env_steps} env steps, seed {m.seed}; weights SHA-256 {m.weights_sha256}.
 */
#ifndef {P}_H
#define {P}_H

#ifdef __cplusplus
extern "C" {{
#endif

#define {P}_TASK "{c_string(m.task)}"
#define {P}_GYM_ID "{c_string(m.gym_id)}"
#define {P}_OBS_DIM {m.obs_dim}
{action_macros}
#define {P}_CONTROL_HZ {m.control_hz!r}
#define {P}_CONTROL_PERIOD_NS {period_ns}L
#define {P}_WEIGHTS_SHA256 "{m.weights_sha256}"
#define {P}_ONNX_SHA256 "{plan.onnx_sha256}"
#define {P}_BUILD_ID {plan.build_id}
#define {P}_ENV_STEPS {m.env_steps}L
#define {P}_SEED {m.seed}
#define {P}_PACKAGE_VERSION "{c_string(m.package_version)}"
#define {P}_METADATA_FORMAT_VERSION {m.format_version}

/* Offsets and sizes of the observation fields (see the layout above). */
{chr(10).join(macros)}

#define {P}_OK 0
#define {P}_ERR_OBS_NONFINITE (-1)
#define {P}_ERR_OUT_NONFINITE (-2)

{bounds_decl}{api[0]}

#ifdef __cplusplus
}}
#endif

#endif /* {P}_H */
"""


def _table(values: np.ndarray, indent: str = "    ") -> str:
    flat = [c_float(v) for v in np.asarray(values, np.float32).reshape(-1)]
    lines = [", ".join(flat[i:i + PER_LINE]) for i in range(0, len(flat), PER_LINE)]
    return ",\n".join(indent + line for line in lines)


def _operand(name: str, value: Operand, consts: list[str]) -> str:  # noqa: D401
    """The C expression of an operand inside the element loop (index ``i``)."""
    if isinstance(value, np.ndarray):
        if uniform(value):
            return c_float(value[0])
        consts.append(f"static const float {name}[{value.size}] = {{\n{_table(value)}\n}};")
        return f"{name}[i]"
    return c_float(float(value))  # a scalar


def _statement(op: str, k: str, p: str) -> str:
    """One element-wise op on ``v``; min/max are written so that a NaN stays NaN (ONNX semantics)."""
    return {
        "sub": f"v = v - {k};", "add": f"v = v + {k};", "mul": f"v = v * {k};", "div": f"v = v / {k};",
        "min": f"v = (v > {k}) ? {k} : v;", "max": f"v = (v < {k}) ? {k} : v;",
        "tanh": f"v = {{p}}_tanh(v);", "relu": "v = (v < 0.0f) ? 0.0f : v;",
        "elu": f"v = (v < 0.0f) ? {k} * expm1f(v) : v;" if k != "1.0f" else "v = (v < 0.0f) ? expm1f(v) : v;",
    }[op].replace("{p}", p)


# tanh without libm's tanhf (~20-30 ns a call here; 128 calls dominate a 64×64 forward pass, FACTS.md):
# |x| < 0.25: the Taylor series to x^11 (next term < 2e-10); else (1 − e)/(1 + e) with e = exp(−2|x|)
# from a Cody–Waite range reduction, a degree-7 Taylor polynomial on |r| <= ln2/2 (error < 6e-9) and
# 2^k written into the exponent bits. |x| is clamped to 9 (1 − tanh 9 < 2^-24, so ±1 beyond). Every
# select is a bit mask on the integer bits of |x| (for non-negative floats the integer order is the
# float order): no float comparison, so gcc -O2 if-converts and vectorizes the layer's loop (float
# selects are not if-converted under the default -ftrapping-math), NaN stays NaN, ±Inf gives ±1, and no
# NaN is ever converted to an integer (undefined in C). Max abs error vs tanh in double: 9e-8 on a
# 1e-5 grid over [-20, 20] (tests/test_c_export.py measures it).
TANH_C = """/* tanh(x) to 1e-7 without libm, branch-free so a layer's loop vectorizes (see export/c_source.py). */
static inline float {p}_tanh(float x)
{
    union { float f; uint32_t u; } a, s, o, scale;
    uint32_t sign, mag, big, small, nan;
    float x2, y, kf, r, e;
    int32_t k;
    a.f = x;
    sign = a.u & 0x80000000u;
    mag = a.u & 0x7fffffffu;                        /* the bits of |x| */
    big = 0u - (uint32_t)(mag > 0x41100000u);       /* mask: |x| > 9, or NaN */
    small = 0u - (uint32_t)(mag < 0x3e800000u);     /* mask: |x| < 0.25 */
    nan = 0u - (uint32_t)(mag > 0x7f800000u);       /* mask: NaN */
    a.u = (mag & ~big) | (0x41100000u & big);       /* min(|x|, 9) */
    x2 = a.f * a.f;
    s.f = a.f + a.f * x2 * (-0.333333333f + x2 * (0.133333333f + x2 * (-0.0539682540f
          + x2 * (0.0218694885f + x2 * -0.00886323552f))));
    y = -2.0f * a.f;                                /* e = exp(y), y in [-18, 0] */
    k = (int32_t)(y * 1.44269504f - 0.5f);          /* round(y / ln 2) */
    kf = (float)k;
    r = (y - kf * 0.693145752f) - kf * 1.42860677e-06f; /* y - k ln 2, ln 2 split in two */
    e = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666667f + r * (0.0416666667f
        + r * (0.00833333333f + r * (0.00138888889f + r * 0.000198412698f))))));
    scale.u = (uint32_t)(k + 127) << 23;            /* 2^k, k in [-26, 0] */
    e = e * scale.f;
    o.f = (1.0f - e) / (1.0f + e);
    o.u = (o.u & ~small) | (s.u & small);           /* |x| < 0.25: the series */
    o.u = (o.u & ~nan) | ((mag | 0x00400000u) & nan); /* NaN in, NaN out */
    o.u |= sign;
    return o.f;
}

"""


def _dense_c(w: str, rows: int, cols: int, src: str, dst: str) -> str:
    """``dst = src · W``: the whole output row is updated per input (the loop over outputs vectorizes at
    -O2), four inputs at a time so ``dst`` is loaded and stored a quarter as often (1.6× faster here)."""
    four = rows - rows % 4
    text = (f"    /* dense {rows} -> {cols}: {dst} = {src} * W, a whole output row per group of inputs */\n"
            f"    for (int j = 0; j < {cols}; ++j) {dst}[j] = 0.0f;\n")
    if four:
        text += (f"    for (int i = 0; i < {four}; i += 4) {{\n"
                 f"        const float x0 = {src}[i], x1 = {src}[i + 1], x2 = {src}[i + 2], x3 = {src}[i + 3];\n"
                 f"        for (int j = 0; j < {cols}; ++j) {{\n"
                 f"            {dst}[j] += x0 * {w}[i][j] + x1 * {w}[i + 1][j]\n"
                 f"                      + x2 * {w}[i + 2][j] + x3 * {w}[i + 3][j];\n"
                 f"        }}\n    }}\n")
    if rows % 4:
        text += (f"    for (int i = {four}; i < {rows}; ++i) {{\n"
                 f"        const float x = {src}[i];\n"
                 f"        for (int j = 0; j < {cols}; ++j) {dst}[j] += x * {w}[i][j];\n    }}\n")
    return text.rstrip("\n")


def render_source(plan: CPlan, prefix: str) -> str:
    """``policy.c``: the weights as ``static const`` tables and the straight-line forward pass."""
    m, n = plan.metadata, _names(prefix)
    p, P = n["p"], n["P"]
    consts: list[str] = []
    body: list[str] = []
    cur, used = "obs", set()
    for s, stage in enumerate(plan.stages):
        last = s == len(plan.stages) - 1
        if isinstance(stage, Dense):
            rows, cols = stage.weight.shape
            name = f"{p}_w{s}"
            consts.append(f"static const float {name}[{rows}][{cols}] = {{\n"
                          + ",\n".join(f"    {{\n{_table(r, '        ')}\n    }}" for r in stage.weight) + "\n};")
            dst = "head" if last else ("a" if cur != "a" else "b")
            body.append(_dense_c(name, rows, cols, cur, dst))
        else:
            dst = "head" if last else ("a" if cur == "obs" else cur)
            lines = [_statement(op, "" if k is None else c_float(k) if op == "elu"
                                else _operand(f"{p}_k{s}_{o}", k, consts), p)
                     for o, (op, k) in enumerate(stage.ops)]
            names = ", ".join(op for op, _ in stage.ops)
            body.append(f"    /* element-wise: {names} */\n"
                        f"    for (int i = 0; i < {stage.width}; ++i) {{\n"
                        f"        float v = {cur}[i];\n"
                        + "".join(f"        {line}\n" for line in lines)
                        + f"        {dst}[i] = v;\n    }}")
        used.add(dst)
        cur = dst
    if cur != "head":  # an empty chain: the head is the observation itself
        body.append(f"    for (int i = 0; i < {plan.head_dim}; ++i) head[i] = {cur}[i];")
    uses_tanh = plan.uses("tanh")
    helpers = TANH_C.replace("{p}", p) if uses_tanh else ""
    buffers = "".join(f"    float {b}[{plan.max_width}];\n" for b in ("a", "b") if b in used)
    to = "the logits (before ArgMax)" if plan.argmax else "the action"
    forward = (f"/* The ONNX graph from the observation to {to}. */\n"
               f"static void {p}_forward(const float obs[{P}_OBS_DIM], float head[{plan.head_dim}])\n{{\n"
               f"{buffers}" + "\n".join(body) + "\n}\n")
    check = (f"    for (int i = 0; i < {P}_OBS_DIM; ++i) {{\n"
             f"        if (!isfinite(obs[i])) return {P}_ERR_OBS_NONFINITE;\n    }}\n")
    if plan.argmax:
        bounds = ""
        act = (f"int {p}_act(const float obs[{P}_OBS_DIM], int *action)\n{{\n"
               f"    float logits[{P}_N_ACTIONS];\n    int best = 0;\n{check}"
               f"    {p}_forward(obs, logits);\n"
               f"    for (int i = 0; i < {P}_N_ACTIONS; ++i) {{\n"
               f"        if (!isfinite(logits[i])) return {P}_ERR_OUT_NONFINITE;\n    }}\n"
               f"    for (int i = 1; i < {P}_N_ACTIONS; ++i) {{\n"
               f"        if (logits[i] > logits[best]) best = i;\n    }}\n"
               f"    *action = best;\n    return {P}_OK;\n}}\n")
    else:
        bounds = (f"const float {p}_action_low[{P}_ACT_DIM] = {P}_ACTION_LOW_INIT;\n"
                  f"const float {p}_action_high[{P}_ACT_DIM] = {P}_ACTION_HIGH_INIT;\n\n")
        act = (f"int {p}_act(const float obs[{P}_OBS_DIM], float action[{P}_ACT_DIM])\n{{\n"
               f"    float head[{P}_ACT_DIM];\n{check}"
               f"    {p}_forward(obs, head);\n"
               f"    for (int i = 0; i < {P}_ACT_DIM; ++i) {{\n"
               f"        if (!isfinite(head[i])) return {P}_ERR_OUT_NONFINITE;\n    }}\n"
               f"    /* The graph clipped already; clip again to the inward-rounded metadata bounds. */\n"
               f"    for (int i = 0; i < {P}_ACT_DIM; ++i) {{\n"
               f"        float v = head[i];\n"
               f"        v = (v > {p}_action_high[i]) ? {p}_action_high[i] : v;\n"
               f"        v = (v < {p}_action_low[i]) ? {p}_action_low[i] : v;\n"
               f"        action[i] = v;\n    }}\n    return {P}_OK;\n}}\n")
    return (f"/* policy.c: trpo-tf policy for task \"{comment(m.task)}\"; see policy.h. Generated, do not edit.\n"
            f" * ONNX SHA-256 {plan.onnx_sha256}. */\n"
            f"#include \"policy.h\"\n\n#include <math.h>\n" + ("#include <stdint.h>\n" if uses_tanh else "")
            + f"\n#if {P}_BUILD_ID != {plan.build_id}\n"
              f"#error \"policy.h comes from another export than policy.c\"\n#endif\n\n"
            + "\n\n".join(consts) + ("\n\n" if consts else "") + bounds + helpers + forward + "\n" + act)
