"""`trpo export-c`, `trpo export --format c` and `trpo bench runtime --c` in real subprocesses: the happy
path writes policy.h/policy.c that compile; bad input exits 2 with one line and writes nothing."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cli_helpers import snapshot, trpo, user_error_line
from export.c_export import compiler
from export.builders import write_mlp
from trained_runs import exported_run, trained_run

STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _compiles(directory: Path) -> bool:
    proc = subprocess.run([*compiler(), *STRICT, "-c", "policy.c", "-o", "/dev/null"], cwd=directory,
                          capture_output=True, text=True)
    return proc.returncode == 0 and proc.stderr == ""


def test_help_lists_export_c_and_its_options() -> None:
    assert "export-c" in trpo("--help").stdout
    result = trpo("export-c", "--help")
    assert result.returncode == 0 and "--name" in result.stdout and "--out" in result.stdout
    assert "--format" in trpo("export", "--help").stdout and "--c" in trpo("bench", "runtime", "--help").stdout


def test_export_c_writes_policy_files_that_compile(tmp_path_factory, tmp_path: Path) -> None:
    onnx_path = exported_run("cartpole", tmp_path_factory)[1].path
    out = tmp_path / "policy"
    result = trpo("export-c", str(onnx_path), "--out", str(out), "--name", "cart")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["policy.c", "policy.h"]
    assert "parity vs onnxruntime" in result.stdout and "500 recorded in the simulator" in result.stdout
    assert "int cart_act(const float obs[CART_OBS_DIM], int *action);" in (out / "policy.h").read_text()
    assert _compiles(out)


def test_export_format_c_from_a_run_directory(tmp_path_factory, tmp_path: Path) -> None:
    run = trained_run("inverted-pendulum", tmp_path_factory)
    out = tmp_path / "c"
    result = trpo("export", str(run), "--format", "c", "--out", str(out), timeout=400)
    assert result.returncode == 0, result.stderr
    assert (run / "policy.onnx").is_file() and _compiles(out)
    assert "parity vs TensorFlow" in result.stdout and "parity vs onnxruntime" in result.stdout


def test_bench_runtime_c_prints_json(tmp_path: Path) -> None:
    path = write_mlp(tmp_path / "p.onnx")
    result = trpo("bench", "runtime", str(path), "--c", "--n", "200", "--json")
    assert result.returncode in (0, 1), result.stderr  # 1 only if the 5x floor was missed on a busy machine
    r = json.loads(result.stdout)
    assert r["c"]["p50_us"] > 0 and r["act"]["p50_us"] > 0 and r["footprint"]["const_bytes"] > 0
    assert result.returncode == (0 if all(r["floors"].values()) else 1)


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[subprocess.CompletedProcess, bool]]:
    root = tmp_path_factory.mktemp("bad_c")
    good = write_mlp(root / "good.onnx")
    sqrt = write_mlp(root / "sqrt.onnx", sqrt_input=True)
    foreign = write_mlp(root / "foreign.onnx", metadata=None)
    junk = root / "junk.onnx"
    junk.write_bytes(b"\x00\x01 not onnx")
    a_file = root / "a_file"
    a_file.write_text("x\n")
    cases = {
        "missing file": ["export-c", str(root / "missing.onnx"), "--out", str(root / "o1")],
        "not onnx": ["export-c", str(junk), "--out", str(root / "o2")],
        "unsupported operator": ["export-c", str(sqrt), "--out", str(root / "o3")],
        "no trpo metadata": ["export-c", str(foreign), "--out", str(root / "o4")],
        "bad name": ["export-c", str(good), "--out", str(root / "o5"), "--name", "Bad-Name"],
        "out is a file": ["export-c", str(good), "--out", str(a_file)],
        "bad format": ["export", str(root), "--format", "rust"],
    }
    before = snapshot(root)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(cases, pool.map(lambda argv: trpo(*argv, cwd=root, timeout=120), cases.values())))
    return {"results": results, "unchanged": before == snapshot(root)}


CASES = ["missing file", "not onnx", "unsupported operator", "no trpo metadata", "bad name", "out is a file",
         "bad format"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_with_one_line(bad, case: str) -> None:
    result = bad["results"][case]
    line = user_error_line(result)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    expected = {"missing file": "no such ONNX file", "not onnx": "is not an ONNX file",
                "unsupported operator": "unsupported operator 'Sqrt'", "no trpo metadata": "not a trpo-tf policy",
                "bad name": "C identifier", "out is a file": "must be a directory", "bad format": "invalid choice"}
    assert expected[case] in line


def test_bad_input_writes_nothing(bad) -> None:
    assert bad["unchanged"]
