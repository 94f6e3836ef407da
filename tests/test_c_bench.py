"""export/c_bench.py (trpo bench runtime --c): a short smoke run; the 5× floor is the benchmark's, not
asserted here (timing on a shared machine belongs to the benchmark)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from export.c_bench import bench_c, main
from export.builders import write_mlp


def test_c_bench_on_the_built_in_policy() -> None:
    r = bench_c(None, n=300, realtime=False)
    assert r["policy"].startswith("built-in 64x64") and r["scheduling"] == "normal priority"
    for key in ("c", "c_via_ctypes", "act", "raw_onnxruntime"):
        assert 0 < r[key]["p50_us"] <= r[key]["p99_us"] <= r[key]["max_us"]
    assert r["c"]["refused_calls"] == 0 and r["parity"]["max_abs_error"] <= 1e-5
    fp = r["footprint"]
    # weights + biases of 11→64→64→3, and the two bound tables; the scalar Clip bounds are literals
    assert fp["const_bytes"] == 4 * (11 * 64 + 64 * 64 + 64 * 3 + 64 + 64 + 3 + 2 * 3)
    assert 0 < fp["stack_bytes"] < 2048 and fp["policy_o_text_bytes"] > fp["const_bytes"]
    assert r["speedup_vs_act_p50"] == pytest.approx(r["act"]["p50_us"] / r["c"]["p50_us"])
    json.dumps(r)


def test_c_bench_cli_json_on_a_discrete_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_mlp(tmp_path / "disc.onnx", discrete=True, act_dim=4)
    code = main([str(path), "--c", "--json", "--n", "200", "--no-realtime"])
    r = json.loads(capsys.readouterr().out)
    assert r["policy"] == str(path) and r["discrete"] is True and r["c"]["refused_calls"] == 0
    assert code == (0 if all(r["floors"].values()) else 1)
    with pytest.raises(ValueError, match="n must be >= 100"):
        bench_c(path, n=5)
