"""export/c_export.py (+ c_plan, c_source): real exported ONNX policies → C, compiled with the system
compiler, against onnxruntime; hostile inputs; refused graphs; the fixed-rate loop example in closed loop."""

from __future__ import annotations

import ctypes
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from export.c_export import (CBuild, CParityError, MIN_PARITY, check_c_parity, compiler, export_c, load_model,
                             parity_observations)
from export.c_plan import plan_from_model
from export.errors import UnsupportedGraphError
from export.metadata import PolicyMetadata
from export.runtime import float32_bounds
from export.builders import build_mlp_model, write_mlp
from export.sim import SimulatedRobot, run_onnx
from trained_runs import TINY, exported_run
from trpo_tf import TRPOConfig, load_policy, train

TASKS = ["cartpole", "inverted-pendulum"]  # discrete, continuous (MuJoCo)
STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]
EXTRA = ["-Wconversion", "-Wdouble-promotion", "-Wshadow"]  # not promised, but kept clean
LOOP_EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "policy_loop.c"


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real exported ONNX files: the shared tiny runs (tanh), plus relu and elu variants (one iteration)."""
    files = {task: exported_run(task, tmp_path_factory)[1].path for task in TASKS}
    from export.onnx import export_policy

    for task, activation in (("hopper", "relu"), ("cartpole", "elu")):
        run = tmp_path_factory.mktemp("c_runs") / f"{task}-{activation}"
        train(TRPOConfig(task=task, activation=activation, **{**TINY, "total_steps": 512}), run, progress=False)
        files[f"{task}-{activation}"] = export_policy(load_policy(run), run / "policy.onnx").path
    return files


@pytest.fixture(scope="module")
def exports(onnx_files, tmp_path_factory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("c_exports")
    return {name: export_c(path, out / name) for name, path in onnx_files.items()}


def _compile(directory: Path, sources: list[str], out: str, flags: list[str] = STRICT, cc: list[str] | None = None,
             ) -> subprocess.CompletedProcess:
    return subprocess.run([*(cc or compiler()), *flags, *sources, "-o", out, "-lm"], cwd=directory,
                          capture_output=True, text=True)


def _build_from_disk(result, tmp_path: Path) -> CBuild:
    """A harness around the files as written (not the exporter's in-memory text)."""
    header, source = Path(result.header).read_text(), Path(result.source).read_text()
    return CBuild(tmp_path, header, source, result.plan)


# ---------------------------------------------------------------------------------------------- parity
@pytest.mark.parametrize("name", TASKS + ["hopper-relu", "cartpole-elu"])
def test_parity_with_onnxruntime_on_10000_observations(onnx_files, exports, name: str, tmp_path: Path) -> None:
    result = exports[name]
    assert result.max_abs_error <= 1e-5 and result.n_observations >= MIN_PARITY
    assert result.n_recorded >= MIN_PARITY // 2  # every task here has a simulator
    # An independent check on the written files with 10,000 other observations (another seed).
    model = load_model(onnx_files[name])
    build = _build_from_disk(result, tmp_path)
    obs, n_recorded = parity_observations(onnx_files[name], result.plan, 10_000, seed=7)
    error, mismatched = check_c_parity(model, result.plan, build, obs, 1e-5)
    assert len(obs) == 10_000 and n_recorded == 5_000 and error <= 1e-5
    if result.plan.argmax:
        assert mismatched == 0  # no exact ties on real observations


def test_the_c_export_needs_no_tensorflow(onnx_files, tmp_path: Path) -> None:
    """onnx, onnxruntime, the simulator and a C compiler: a fresh interpreter never loads TensorFlow."""
    code = ("import sys\nfrom export.c_export import export_c\n"
            f"r = export_c({str(onnx_files['inverted-pendulum'])!r}, {str(tmp_path / 'c')!r})\n"
            "assert r.n_recorded == 500 and r.max_abs_error <= 1e-5\n"
            "print([m for m in ('tensorflow', 'tf2onnx', 'keras', 'trpo_tf.policy') if m in sys.modules])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_export_c_writes_both_files_and_reports(exports) -> None:
    for name, result in exports.items():
        assert sorted(p.name for p in Path(result.header).parent.iterdir()) == ["policy.c", "policy.h"]
        fp = result.footprint
        assert fp.const_bytes == result.plan.const_bytes > 4 * 64 * 64  # two hidden layers of 64
        assert 0 < fp.stack_bytes < 2048 and fp.text_bytes >= fp.const_bytes


# ---------------------------------------------------------------------------------------------- safety
def _hostile(obs_dim: int, rng: np.random.Generator) -> np.ndarray:
    f32 = np.finfo(np.float32)
    values = np.array([0.0, -0.0, 1e-45, -1e-45, f32.tiny, 1e-30, 1.0, -1.0, 1e6, -1e6, 1e30, -1e30,
                       f32.max, -f32.max], np.float32)
    rows = [np.full(obs_dim, v, np.float32) for v in values]
    rows += [rng.choice(values, obs_dim).astype(np.float32) for _ in range(2000)]
    rows += [np.clip(rng.standard_normal(obs_dim) * 10.0 ** rng.integers(-40, 39, obs_dim), -f32.max, f32.max)
             .astype(np.float32) for _ in range(2000)]
    return np.stack(rows)


@pytest.mark.parametrize("name", TASKS)
def test_non_finite_observation_returns_the_error_code_and_leaves_the_action(exports, name, tmp_path) -> None:
    result = exports[name]
    build = _build_from_disk(result, tmp_path)
    d = result.plan.metadata.obs_dim
    rows = []
    for bad in (np.nan, np.inf, -np.inf):
        for i in range(d):
            row = np.zeros(d, np.float32)
            row[i] = bad
            rows.append(row)
    actions, codes = build.act(np.stack(rows), fill=123.0)
    assert (codes == -1).all()  # TRPO_POLICY_ERR_OBS_NONFINITE
    assert (actions == (-1 if result.plan.argmax else 123.0)).all()  # untouched
    header = Path(result.header).read_text()
    assert "#define TRPO_POLICY_ERR_OBS_NONFINITE (-1)" in header and "#define TRPO_POLICY_OK 0" in header


@pytest.mark.parametrize("name", TASKS + ["hopper-relu"])
def test_no_action_ever_leaves_the_bounds_on_hostile_inputs(exports, name, tmp_path) -> None:
    result = exports[name]
    meta: PolicyMetadata = result.plan.metadata
    build = _build_from_disk(result, tmp_path)
    obs = _hostile(meta.obs_dim, np.random.default_rng(0))
    actions, codes = build.act(obs)
    assert (codes == 0).all()  # every row is finite: the C code acts on all of them
    if meta.discrete:
        assert ((actions >= 0) & (actions < meta.n_actions)).all()
    else:
        assert np.isfinite(actions).all()
        assert (actions.astype(np.float64) >= np.asarray(meta.action_low)).all()
        assert (actions.astype(np.float64) <= np.asarray(meta.action_high)).all()


def test_bounds_that_float32_cannot_hold_are_rounded_inward(tmp_path: Path) -> None:
    low, high = [-0.3, 0.1, -2.0], [0.8, 0.7, 1e-3]  # 0.8f = 0.800000012 > 0.8, etc.
    path = write_mlp(tmp_path / "p.onnx", obs_dim=5, act_dim=3, low=low, high=high)
    result = export_c(path, tmp_path / "c")
    build = _build_from_disk(result, tmp_path / "b")
    actions, codes = build.act(_hostile(5, np.random.default_rng(1)), fill=np.nan)
    # This test graph has no normalizer: inputs near 3e38 overflow the first layer to inf - inf = NaN,
    # which the C code refuses (TRPO_POLICY_ERR_OUT_NONFINITE) instead of acting; the rest must act.
    assert set(codes.tolist()) == {0, -2} and (codes == 0).sum() > 3000
    assert np.isnan(actions[codes == -2]).all()
    actions = actions[codes == 0]
    a = actions.astype(np.float64)
    assert (a >= np.asarray(low)).all() and (a <= np.asarray(high)).all()
    lo32, hi32 = float32_bounds(low, high)
    assert hi32[0] < np.float32(0.8) and (actions[:, 0] == hi32[0]).any()  # saturated at 0.79999995f


def test_tanh_matches_libm_to_2e_7_and_keeps_nan(exports, tmp_path) -> None:
    result = exports["cartpole"]
    build = _build_from_disk(result, tmp_path)
    tanh = build.lib.harness_tanh
    tanh.restype, tanh.argtypes = ctypes.c_float, [ctypes.c_float]
    xs = np.concatenate([np.linspace(-20, 20, 200_001), np.geomspace(1e-30, 1, 2001), -np.geomspace(1e-30, 1, 2001)])
    xs = xs.astype(np.float32)
    got = np.array([tanh(float(x)) for x in xs], np.float64)
    assert np.max(np.abs(got - np.tanh(xs.astype(np.float64)))) <= 2e-7
    assert math.isnan(tanh(float("nan"))) and tanh(float("inf")) == 1.0 and tanh(float("-inf")) == -1.0
    assert math.copysign(1.0, tanh(-0.0)) == -1.0


# ---------------------------------------------------------------------------------------------- refusals
def test_a_graph_with_an_unsupported_operator_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    path = write_mlp(tmp_path / "sqrt.onnx", sqrt_input=True)
    with pytest.raises(UnsupportedGraphError, match="unsupported operator 'Sqrt'"):
        export_c(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"discrete": True, "index_offset": 1}, "follows ArgMax"),
    ({"metadata": None}, "not a trpo-tf policy file"),
    ({"input_name": "obs"}, "expected one input 'observation'"),
])
def test_graphs_outside_the_exporters_shape_are_refused(kwargs, message: str) -> None:
    with pytest.raises(UnsupportedGraphError, match=message):
        plan_from_model(build_mlp_model(**kwargs))


def test_a_file_that_is_not_onnx_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"not a protobuf at all \xff\xfe")
    with pytest.raises(UnsupportedGraphError, match="not an ONNX file"):
        export_c(bad, tmp_path / "out")
    with pytest.raises(FileNotFoundError):
        export_c(tmp_path / "missing.onnx", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_failed_gate_writes_nothing_and_keeps_the_previous_files(onnx_files, tmp_path: Path) -> None:
    out = tmp_path / "policy"
    out.mkdir()
    (out / "policy.h").write_text("previous header\n")
    with pytest.raises(CParityError, match="C parity check failed") as info:
        export_c(onnx_files["inverted-pendulum"], out, tolerance=1e-12)  # the C tanh differs by ~1e-7
    assert info.value.max_abs_error > 1e-12 and info.value.n_observations >= MIN_PARITY
    assert sorted(p.name for p in out.iterdir()) == ["policy.h"]  # no policy.c, no temp files
    assert (out / "policy.h").read_text() == "previous header\n"


# ---------------------------------------------------------------------------------------------- C hygiene
@pytest.mark.parametrize("name", TASKS + ["hopper-relu", "cartpole-elu"])
def test_generated_c_compiles_warning_free_with_no_heap_and_no_writable_globals(exports, name, tmp_path) -> None:
    result = exports[name]
    d = Path(result.header).parent
    proc = subprocess.run([*compiler(), *STRICT, *EXTRA, "-c", "policy.c", "-o", str(tmp_path / "policy.o")],
                          cwd=d, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    size = subprocess.run(["size", "-A", str(tmp_path / "policy.o")], capture_output=True, text=True).stdout
    sections = {line.split()[0]: int(line.split()[1]) for line in size.splitlines()[2:] if len(line.split()) == 3}
    assert sections.get(".data", 0) == 0 and sections.get(".bss", 0) == 0  # nothing writable
    undefined = subprocess.run(["nm", "-u", str(tmp_path / "policy.o")], capture_output=True, text=True).stdout.split()
    assert set(undefined) - {"U"} <= {"expm1f"}  # libm at most; no malloc, no printf, no tanhf


def test_header_macros_carry_the_metadata(exports, tmp_path: Path) -> None:
    result = exports["inverted-pendulum"]
    m = result.plan.metadata
    program = tmp_path / "meta.c"
    program.write_text('#include <stdio.h>\n#include "policy.h"\nint main(void) {\n'
                       '  printf("{\\"obs\\": %d, \\"act\\": %d, \\"hz\\": %.17g, \\"task\\": \\"%s\\", '
                       '\\"sha\\": \\"%s\\", \\"low\\": %.9g}\\n", TRPO_POLICY_OBS_DIM, TRPO_POLICY_ACT_DIM, '
                       '(double)TRPO_POLICY_CONTROL_HZ, TRPO_POLICY_TASK, TRPO_POLICY_WEIGHTS_SHA256, '
                       '(double)trpo_policy_action_low[0]);\n  return 0;\n}\n')
    d = Path(result.header).parent
    proc = _compile(tmp_path, [str(program), str(d / "policy.c"), f"-I{d}"], str(tmp_path / "meta"))
    assert proc.returncode == 0, proc.stderr
    got = json.loads(subprocess.run([str(tmp_path / "meta")], capture_output=True, text=True).stdout)
    assert got == {"obs": m.obs_dim, "act": m.act_dim, "hz": m.control_hz, "task": m.task,
                   "sha": m.weights_sha256, "low": m.action_low[0]}
    header = Path(result.header).read_text()
    for field in m.obs_layout:
        assert field.name in header and f"[{field.unit}]" in header


def test_a_prefix_renames_every_symbol_and_macro(onnx_files, tmp_path: Path) -> None:
    result = export_c(onnx_files["cartpole"], tmp_path / "arm", prefix="arm_policy")
    header, source = Path(result.header).read_text(), Path(result.source).read_text()
    assert "int arm_policy_act(const float obs[ARM_POLICY_OBS_DIM], int *action);" in header
    assert "trpo_policy" not in header + source and "TRPO_POLICY" not in header + source
    proc = subprocess.run([*compiler(), *STRICT, "-c", "policy.c", "-o", str(tmp_path / "p.o")],
                          cwd=tmp_path / "arm", capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    defined = subprocess.run(["nm", "-g", "--defined-only", str(tmp_path / "p.o")], capture_output=True,
                             text=True).stdout.split()
    assert "arm_policy_act" in defined
    with pytest.raises(ValueError, match="C identifier"):
        export_c(onnx_files["cartpole"], tmp_path / "bad", prefix="2bad-name")
    assert not (tmp_path / "bad").exists()


def test_a_header_from_another_export_does_not_compile(exports, tmp_path: Path) -> None:
    a, b = Path(exports["cartpole"].header).parent, Path(exports["cartpole-elu"].header).parent
    shutil.copy(a / "policy.c", tmp_path / "policy.c")
    shutil.copy(b / "policy.h", tmp_path / "policy.h")
    proc = subprocess.run([*compiler(), *STRICT, "-c", "policy.c"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0 and "another export" in proc.stderr


def test_a_cpp_controller_links_the_c_policy(exports, tmp_path: Path) -> None:
    if shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("no C++ compiler")
    d = Path(exports["inverted-pendulum"].header).parent
    (tmp_path / "ctrl.cpp").write_text(
        '#include <array>\n#include <cstdio>\n#include "policy.h"\nint main() {\n'
        '  std::array<float, TRPO_POLICY_OBS_DIM> obs{};\n  std::array<float, TRPO_POLICY_ACT_DIM> act{};\n'
        '  const int rc = trpo_policy_act(obs.data(), act.data());\n'
        '  std::printf("%d %d\\n", rc, act[0] >= trpo_policy_action_low[0] && act[0] <= trpo_policy_action_high[0]);\n'
        '  return rc;\n}\n')
    cc = _compile(tmp_path, [f"-I{d}", "-c", str(d / "policy.c")], str(tmp_path / "policy.o"))
    assert cc.returncode == 0, cc.stderr
    cxx = shutil.which("g++") or shutil.which("c++")
    proc = subprocess.run([cxx, "-std=c++17", "-Wall", "-Wextra", "-Werror", f"-I{d}", "ctrl.cpp", "policy.o",
                           "-o", "ctrl", "-lm"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run([str(tmp_path / "ctrl")], capture_output=True, text=True).stdout.split() == ["0", "1"]


# ---------------------------------------------------------------------------------------------- closed loop
def _drive(exe: Path, task: str, episode_seed: int, discrete: bool) -> tuple[float, int, str]:
    """One episode of the simulator driven by the compiled loop example through a pipe."""
    robot = SimulatedRobot(task, seed=episode_seed)
    proc = subprocess.Popen([str(exe), "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    try:
        obs = robot.start_episode(0)
        while True:
            proc.stdin.write(" ".join(f"{v:.9g}" for v in obs) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            robot.apply_action(int(line) if discrete else np.array(line.split(), np.float32))
            if robot.episode_over:
                break
            obs = robot.read_observation()
        proc.stdin.close()
        stderr = proc.stderr.read()
        assert proc.wait(timeout=10) == 0
    finally:
        robot.close()
        if proc.poll() is None:
            proc.kill()
    return robot.episode_return, robot.episode_length, stderr


@pytest.mark.parametrize("name", TASKS)
def test_loop_example_in_closed_loop_matches_run_onnx(onnx_files, exports, name, tmp_path: Path) -> None:
    result = exports[name]
    d = Path(result.header).parent
    proc = _compile(tmp_path, [str(LOOP_EXAMPLE), str(d / "policy.c"), f"-I{d}"], str(tmp_path / "loop"))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    meta = result.plan.metadata
    for seed in (0, 1):
        c_return, c_length, stderr = _drive(tmp_path / "loop", meta.task, seed, meta.discrete)
        ref = run_onnx(onnx_files[name], episodes=1, seed=seed)
        assert c_length == ref["mean_length"] and c_return == pytest.approx(ref["mean_return"], rel=1e-6)
        assert f"{c_length} ticks, 0 refused" in stderr
