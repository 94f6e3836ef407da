"""Export an ONNX policy file to plain C (``policy.h`` + ``policy.c``) behind a parity gate.

    export_c("run/policy.onnx", "policy/")      # or: trpo export-c run/policy.onnx --out policy/

1. :func:`export.c_source.generate` lowers the graph (:mod:`export.c_plan`, which refuses any graph
   outside the operators our exporter emits) and prints the C.
2. In a temporary directory the system compiler (``$CC``, else ``cc``/``gcc``/``clang``) builds
   ``policy.c`` alone with ``-std=c99 -O2 -Wall -Wextra -Werror -pedantic -fstack-usage`` (any warning
   fails the export) and a small harness that ``#include``-s it as a shared library for ``ctypes``.
3. Parity gate, like the ONNX one (:mod:`export.onnx`): onnxruntime and the compiled C run the same
   observations — recorded by the ONNX policy in its simulator where the task is known, plus
   observations spread over the normalizer's statistics (inside and beyond its clip). Compared: the
   head (the action, or for a discrete policy the logits before ArgMax, which onnxruntime is asked for as
   an extra output) and the action. Discrete actions may differ only where onnxruntime's logits tie
   within the tolerance. Any error above ``tolerance`` raises :class:`CParityError`.
4. Only then both files are written through temporary files and renamed; ``policy.c`` refuses to
   compile against a ``policy.h`` of another export (a build id from the ONNX file's SHA-256).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from export.c_plan import CPlan, Pointwise
from export.c_source import DEFAULT_PREFIX, generate
from export.errors import CompilerNotFoundError, CParityError, UnsupportedGraphError
from export.runtime import INPUT_NAME, OUTPUT_NAME, OnnxPolicy, session_options
from trpo_tf.files import atomic_path

MIN_PARITY = 1000
STRICT_FLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic")
FILES = ("policy.h", "policy.c")


@dataclass(frozen=True)
class Footprint:
    """Memory a microcontroller needs for the policy (measured on this machine's compiler at -O2)."""

    const_bytes: int  # float tables (weights, normalizer, bounds): flash/rodata
    text_bytes: int  # code + rodata of policy.o as `size` reports it (0 if `size` is missing)
    stack_bytes: int  # trpo_policy_act's frame(s) from gcc -fstack-usage (0 if the compiler has no such flag)


@dataclass(frozen=True)
class CExportResult:
    header: Path
    source: Path
    plan: CPlan
    footprint: Footprint
    max_abs_error: float
    n_observations: int
    n_recorded: int
    n_mismatched_actions: int
    tolerance: float
    compiler: str
    seconds: float


def compiler() -> list[str]:
    """The C compiler command: ``$CC`` if set, else the first of cc, gcc, clang on ``PATH``."""
    if os.environ.get("CC"):
        return shlex.split(os.environ["CC"])
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return [name]
    raise CompilerNotFoundError("no C compiler found (tried $CC, cc, gcc, clang): install gcc or set CC")


def export_c(onnx_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], n_parity: int = MIN_PARITY,
             tolerance: float = 1e-5, prefix: str = DEFAULT_PREFIX, seed: int = 0) -> CExportResult:
    """Generate, compile, check against onnxruntime, then atomically write ``out_dir/policy.{h,c}``."""
    if type(n_parity) is not int or n_parity < MIN_PARITY:
        raise ValueError(f"n_parity must be an integer >= {MIN_PARITY}, got {n_parity!r}")
    if not isinstance(tolerance, (int, float)) or not np.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    start = time.perf_counter()
    model = load_model(onnx_path)
    header, source, plan = generate(model, prefix)
    with tempfile.TemporaryDirectory(prefix="trpo-c-") as tmp:
        build = CBuild(Path(tmp), header, source, plan, prefix)
        observations, n_recorded = parity_observations(onnx_path, plan, n_parity, seed)
        error, mismatched = check_c_parity(model, plan, build, observations, float(tolerance))
    out = Path(out_dir)
    write_files_atomic(out, {name: text for name, text in zip(FILES, (header, source))})
    return CExportResult(
        header=out / FILES[0], source=out / FILES[1], plan=plan, footprint=build.footprint,
        max_abs_error=error, n_observations=len(observations), n_recorded=n_recorded,
        n_mismatched_actions=mismatched, tolerance=float(tolerance), compiler=" ".join(build.cc),
        seconds=time.perf_counter() - start)


def load_model(onnx_path: str | os.PathLike[str]) -> onnx.ModelProto:
    path = Path(onnx_path)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX policy file at {path}")
    try:
        return onnx.load(str(path))
    except Exception as e:  # protobuf raises DecodeError and friends for a file that is not ONNX
        raise UnsupportedGraphError(f"{path} is not an ONNX file ({type(e).__name__}: {e})") from None


class CBuild:
    """``policy.c`` compiled twice in ``directory``: alone (strict flags, footprint) and inside a harness
    shared library whose ``forward``/``act`` run many observations per ``ctypes`` call."""

    def __init__(self, directory: Path, header: str, source: str, plan: CPlan, prefix: str = DEFAULT_PREFIX):
        self.directory, self.plan, self.prefix, self.cc = directory, plan, prefix, compiler()
        directory.mkdir(parents=True, exist_ok=True)
        (directory / FILES[0]).write_text(header, encoding="ascii")
        (directory / FILES[1]).write_text(source, encoding="ascii")
        (directory / "harness.c").write_text(harness_source(plan, prefix), encoding="ascii")
        self._run([*self.cc, *STRICT_FLAGS, "-fstack-usage", "-c", FILES[1], "-o", "policy.o"], "policy.c")
        lib = directory / "harness.so"
        self._run([*self.cc, *STRICT_FLAGS, "-fPIC", "-shared", "harness.c", "-o", lib.name, "-lm"], "harness.c")
        self.lib = ctypes.CDLL(str(lib))
        f32, i32 = ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_int)
        self.lib.harness_forward.argtypes = [f32, ctypes.c_int, f32]
        self.lib.harness_act.argtypes = [f32, ctypes.c_int, i32 if plan.argmax else f32, i32]
        self.footprint = Footprint(plan.const_bytes, self._text_bytes(), self._stack_bytes())

    def forward(self, obs: np.ndarray) -> np.ndarray:
        """The head (action, or logits) for each row of ``obs`` (float32 ``[n, obs_dim]``)."""
        x = np.ascontiguousarray(obs, np.float32)
        head = np.zeros((len(x), self.plan.head_dim), np.float32)
        self.lib.harness_forward(_ptr(x, ctypes.c_float), len(x), _ptr(head, ctypes.c_float))
        return head

    def act(self, obs: np.ndarray, fill: float = np.nan) -> tuple[np.ndarray, np.ndarray]:
        """``(actions, return codes)`` of ``<prefix>_act`` per row; rows it refuses keep ``fill`` (or -1)."""
        x = np.ascontiguousarray(obs, np.float32)
        codes = np.zeros(len(x), np.int32)
        if self.plan.argmax:
            out = np.full(len(x), -1, np.int32)
            self.lib.harness_act(_ptr(x, ctypes.c_float), len(x), _ptr(out, ctypes.c_int), _ptr(codes, ctypes.c_int))
        else:
            out = np.full((len(x), self.plan.head_dim), fill, np.float32)
            self.lib.harness_act(_ptr(x, ctypes.c_float), len(x), _ptr(out, ctypes.c_float),
                                 _ptr(codes, ctypes.c_int))
        return out, codes

    def _run(self, cmd: list[str], what: str) -> None:
        proc = subprocess.run(cmd, cwd=self.directory, capture_output=True, text=True)
        if proc.returncode != 0 or proc.stderr.strip():  # a warning is a failure too (our code must be clean)
            raise RuntimeError(f"compiling the generated {what} failed ({' '.join(cmd)}):\n{proc.stderr}")

    def _text_bytes(self) -> int:
        size = shutil.which("size")
        if size is None:
            return 0
        out = subprocess.run([size, "policy.o"], cwd=self.directory, capture_output=True, text=True).stdout
        try:
            return int(out.splitlines()[1].split()[0])
        except (IndexError, ValueError):
            return 0

    def _stack_bytes(self) -> int:
        su = self.directory / "policy.su"  # lines "policy.c:12:6:trpo_policy_act\t160\tstatic"
        if not su.is_file():
            return 0
        frames = {line.split("\t")[0].rsplit(":", 1)[-1]: int(line.split("\t")[1])
                  for line in su.read_text().splitlines() if "\t" in line}
        p = self.prefix
        return sum(frames.get(f, 0) for f in (f"{p}_act", f"{p}_forward", f"{p}_tanh"))


def harness_source(plan: CPlan, prefix: str) -> str:
    """C for the test/gate library: ``harness_forward``/``harness_act`` loop over ``n`` rows."""
    p, P = prefix, prefix.upper()
    out_t, out_row = ("int", "out + r") if plan.argmax else ("float", f"out + (long)r * {P}_ACT_DIM")
    tanh = f"float harness_tanh(float x) {{ return {p}_tanh(x); }}\n" if plan.uses("tanh") else ""
    return (f"/* Test harness for the parity gate (export/c_export.py); not part of the export. */\n"
            f"#include \"policy.c\"\n\n"
            f"int harness_forward(const float *obs, int n, float *head);\n"
            f"int harness_act(const float *obs, int n, {out_t} *out, int *codes);\n"
            + (f"float harness_tanh(float x);\n{tanh}" if tanh else "")
            + f"\nint harness_forward(const float *obs, int n, float *head)\n{{\n"
            f"    for (int r = 0; r < n; ++r) {{\n"
            f"        {p}_forward(obs + (long)r * {P}_OBS_DIM, head + (long)r * {plan.head_dim});\n    }}\n"
            f"    return 0;\n}}\n\n"
            f"int harness_act(const float *obs, int n, {out_t} *out, int *codes)\n{{\n"
            f"    for (int r = 0; r < n; ++r) codes[r] = {p}_act(obs + (long)r * {P}_OBS_DIM, {out_row});\n"
            f"    return 0;\n}}\n")


def _ptr(a: np.ndarray, ctype: type) -> ctypes._Pointer:
    return a.ctypes.data_as(ctypes.POINTER(ctype))


# ---------------------------------------------------------------------------------------------- the gate
def normalizer_of(plan: CPlan) -> tuple[np.ndarray, np.ndarray, float]:
    """(mean, std, clip) of the frozen normalizer at the head of the graph (Sub, Mul, Min, Max), or the
    identity with clip 10 when the graph has none."""
    d = plan.metadata.obs_dim
    first = plan.stages[0] if plan.stages else None
    if isinstance(first, Pointwise) and [op for op, _ in first.ops][:4] == ["sub", "mul", "min", "max"]:
        (_, mean), (_, inv_std), (_, clip) = first.ops[:3]
        mean = np.broadcast_to(np.asarray(mean, np.float64), (d,))
        inv_std = np.broadcast_to(np.asarray(inv_std, np.float64), (d,))
        return mean.copy(), 1.0 / inv_std, float(np.max(clip))
    return np.zeros(d), np.ones(d), 10.0


def spread_observations(mean: np.ndarray, std: np.ndarray, clip: float, n: int, seed: int = 0) -> np.ndarray:
    """``mean + z·std`` with z from N(0, 1), U(±1.5·clip) and rows at ±k·std for k up to 2·clip (random
    signs): typical inputs, inputs where the clip is active, and far outliers (as export/onnx.py)."""
    rng = np.random.default_rng(seed)
    d = len(mean)
    n_normal = n_uniform = n // 3
    levels = np.array([0.0, 0.5, 1.0, 3.0, clip - 0.5, clip, clip + 0.5, 1.5 * clip, 2.0 * clip])
    grid = n - n_normal - n_uniform
    z = np.concatenate([rng.standard_normal((n_normal, d)), rng.uniform(-1.5 * clip, 1.5 * clip, (n_uniform, d)),
                        levels[np.arange(grid) % len(levels)][:, None] * rng.choice([-1.0, 1.0], (grid, d))])
    return (mean + z * std).astype(np.float32)


def record_observations(onnx_path: str | os.PathLike[str], n: int, seed: int = 0) -> np.ndarray:
    """``n`` observations met by the ONNX policy in its task's simulator (episode k seeded ``seed + k``);
    an empty array when the metadata's task is not one this installation can simulate."""
    from export.sim import SimulatedRobot  # gymnasium and the simulators: only needed here

    policy = OnnxPolicy(onnx_path)
    try:
        robot = SimulatedRobot(policy.metadata.task, seed=seed)
    except Exception:  # noqa: BLE001 - an unknown task or a simulator that is not installed: spread only
        return np.empty((0, policy.obs_dim), np.float32)
    out = np.empty((n, policy.obs_dim), np.float32)
    try:
        i = k = 0
        while i < n:
            obs = robot.start_episode(k)
            k += 1
            while i < n:
                out[i] = obs
                i += 1
                robot.apply_action(policy.act(obs))
                if robot.episode_over:
                    break
                obs = robot.read_observation()
    finally:
        robot.close()
    return out


def parity_observations(onnx_path: str | os.PathLike[str], plan: CPlan, n: int,
                        seed: int = 0) -> tuple[np.ndarray, int]:
    """Half recorded in the simulator (when available), the rest spread over the normalizer's range."""
    recorded = record_observations(onnx_path, n // 2, seed)
    mean, std, clip = normalizer_of(plan)
    spread = spread_observations(mean, std, clip, n - len(recorded), seed)
    return np.concatenate([recorded, spread]).astype(np.float32), len(recorded)


def onnx_head_and_action(model: onnx.ModelProto, plan: CPlan, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """onnxruntime's head (the ArgMax input for discrete policies) and action for ``obs``."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    if plan.head_name != OUTPUT_NAME:
        m.graph.output.append(onnx.helper.make_tensor_value_info(plan.head_name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(m.SerializeToString(), sess_options=session_options(1),
                                   providers=["CPUExecutionProvider"])
    names = [OUTPUT_NAME] if plan.head_name == OUTPUT_NAME else [plan.head_name, OUTPUT_NAME]
    outs = session.run(names, {INPUT_NAME: np.ascontiguousarray(obs, np.float32)})
    return (outs[0], outs[0]) if len(outs) == 1 else (outs[0], outs[1])


def check_c_parity(model: onnx.ModelProto, plan: CPlan, build: CBuild, obs: np.ndarray,
                   tolerance: float) -> tuple[float, int]:
    """Max error of the C code against onnxruntime on ``obs`` and the number of differing discrete
    actions; :class:`CParityError` if the error exceeds ``tolerance`` or the C refuses a finite row."""
    n = len(obs)
    ort_head, ort_action = onnx_head_and_action(model, plan, obs)
    c_head = build.forward(obs)
    c_action, codes = build.act(obs)
    if (codes != 0).any():
        raise CParityError(np.inf, tolerance, n, f" (the C code refused {(codes != 0).sum()} finite observations)")
    diff = np.abs(c_head.astype(np.float64) - ort_head.astype(np.float64))
    error = float(np.max(np.where(np.isnan(diff), np.inf, diff)))
    mismatched = 0
    if plan.argmax:
        rows = np.arange(n)
        gap = ort_head[rows, ort_action].astype(np.float64) - ort_head[rows, c_action].astype(np.float64)
        mismatched = int((c_action != ort_action).sum())
        error = max(error, float(np.max(gap)))
    else:
        error = max(error, float(np.max(np.abs(c_action.astype(np.float64) - ort_action.astype(np.float64)))))
    if not error <= tolerance:
        raise CParityError(error, tolerance, n, f" ({mismatched} differing actions)" if plan.argmax else "")
    return error, mismatched


def write_files_atomic(out_dir: Path, files: dict[str, str]) -> None:
    """Write every file through a temporary file in ``out_dir`` (:func:`trpo_tf.files.atomic_path`, nested),
    renamed only when all were written; on any error the previous files stay and no temporary is left."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        for name, text in files.items():
            stack.enter_context(atomic_path(out_dir / name)).write_text(text, encoding="ascii")
