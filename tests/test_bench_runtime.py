"""export/bench.py (benchmarks/bench_runtime.py, trpo bench runtime): a short smoke run of the runtime benchmark (its floors are not asserted:
timing belongs to the benchmark, not to tests on a shared machine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import export.bench
from export.builders import write_mlp


def _load():
    return export.bench


def test_bench_on_a_built_policy() -> None:
    result = _load().bench_runtime(None, n=300, loop_seconds=0.2, rate_hz=500.0, realtime=False)
    assert result["policy"].startswith("built-in 64x64")
    for key in ("act", "raw_onnxruntime"):
        s = result[key]
        assert 0 < s["p50_us"] <= s["p99_us"] <= s["max_us"]
    loop = result["loop"]
    # 0.2 s at 500 Hz is 100 slots; a late final tick can land one slot past the boundary on a busy machine.
    assert loop["reason"] == "completed" and abs(loop["ticks"] + loop["skipped_ticks"] - 100) <= 1
    assert set(result["floors"]) == {"act_p99_us<=20", "loop_deadlines>=99.9%"}
    json.dumps(result)


def test_bench_cli_on_a_discrete_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_mlp(tmp_path / "disc.onnx", discrete=True, act_dim=4)
    code = _load().main([str(path), "--json", "--n", "200", "--loop-seconds", "0.1", "--no-realtime"])
    result = json.loads(capsys.readouterr().out)
    assert result["policy"] == str(path) and result["discrete"] is True
    assert code == (0 if all(result["floors"].values()) else 1) and result["loop"]["ticks"] > 0
    with pytest.raises(ValueError, match="n must be >= 100"):
        _load().bench_runtime(path, n=5)
