"""Property-based test of the CLI's input handling (hypothesis), in-process through ``main(argv)``.

Whatever ``--set`` values, config files or run-file contents are generated, ``trpo`` answers with exit 0
or 2; on 2 with at most 3 stderr lines, no traceback, and nothing written. Bounded: a fixed number of
derandomized examples per property (no deadline: the first call pays TensorFlow's start-up), ~1 minute
in all on 2 idle cores. Valid configurations never train: they go to an existing run directory, which
``train`` refuses (exit 2) after the configuration was checked.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_helpers import snapshot
from export.builders import make_metadata, write_mlp
from trpo_tf import TRPOConfig
from trpo_tf.app.cli import main

FIELDS = [f.name for f in dataclasses.fields(TRPOConfig)]
SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

NASTY = [".nan", ".inf", "-.inf", "1e400", "-1", "0", "4294967296", "[]", "{}", "[1, 2]", "{a: 1}", "~", "true",
         "''", "'x'", "[", "{", ": :", "!!binary AAAA", "&a 1", "*a", "0x10", "1_000", "\t", "é", "-", "--x"]
values = st.one_of(
    st.sampled_from(NASTY),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-2**70, 2**70).map(str),
    st.text(max_size=12).filter(lambda t: "\x00" not in t),
)
keys = st.one_of(st.sampled_from(FIELDS), st.text(min_size=0, max_size=8).filter(lambda t: "\x00" not in t))
yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(),
                         st.text(max_size=8), st.lists(st.integers(-5, 10**7), max_size=3))



def _check(argv: list[str], root: Path, capfd: pytest.CaptureFixture[str]) -> int:
    """Run ``trpo argv``; assert the contract; return the exit code."""
    before = snapshot(root)
    capfd.readouterr()
    code = main(argv)
    _, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert code in (0, 2), f"exit {code} for {argv}:\n{err}"
    assert "Traceback" not in err, err
    if code == 2:
        assert 1 <= len(lines) <= 3 and ": error: " in lines[-1], err
        assert snapshot(root) == before, f"{argv} failed but changed files"
    return code


@settings(max_examples=60, **SETTINGS)
@given(assignments=st.lists(st.tuples(keys, values), min_size=1, max_size=3))
def test_set_values(trained: Path, capfd: pytest.CaptureFixture[str], assignments: list[tuple[str, str]]) -> None:
    argv = ["train", "--task", "Pendulum-v1", "--out", str(trained), "--no-progress",
            "--set", *(f"{k}={v}" for k, v in assignments)]
    assert _check(argv, trained.parent, capfd) == 2  # valid or not, the existing run is never overwritten


@settings(max_examples=40, **SETTINGS)
@given(content=st.one_of(
    st.binary(max_size=120),
    st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=6)), yaml_scalars, max_size=4)
    .map(lambda d: yaml.safe_dump(d).encode("utf-8")),
    st.text(max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass")),
))
def test_config_files(trained: Path, tmp_path_factory: pytest.TempPathFactory, capfd: pytest.CaptureFixture[str],
                      content: bytes) -> None:
    folder = tmp_path_factory.mktemp("config")
    path = folder / "config.yaml"
    path.write_bytes(content)
    argv = ["train", "--config", str(path), "--task", "Pendulum-v1", "--out", str(trained), "--no-progress"]
    assert _check(argv, folder, capfd) == 2
    assert _check(["train", "--config", str(path), "--out", str(folder / "new"), "--steps", "0"], folder,
                  capfd) == 2


def _mutated(original: bytes, data: st.DataObject) -> bytes:
    kind = data.draw(st.sampled_from(["binary", "truncate", "flip", "text"]))
    if kind == "binary":
        return data.draw(st.binary(max_size=200))
    if kind == "truncate":
        return original[: data.draw(st.integers(0, len(original)))]
    if kind == "flip":
        blob = bytearray(original)
        for _ in range(data.draw(st.integers(1, 4))):
            if blob:
                blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
        return bytes(blob)
    return data.draw(st.text(max_size=100)).encode("utf-8", "surrogatepass")


@settings(max_examples=40, **SETTINGS)
@given(data=st.data())
def test_run_file_contents(trained: Path, tmp_path_factory: pytest.TempPathFactory,
                           capfd: pytest.CaptureFixture[str], data: st.DataObject) -> None:
    root = tmp_path_factory.mktemp("runfile")
    run = root / "run"
    shutil.copytree(trained, run)
    name = data.draw(st.sampled_from(["config.yaml", "run.json", "metrics.csv", "checkpoints/checkpoint"]))
    (run / name).write_bytes(_mutated((trained / name).read_bytes(), data))
    command = data.draw(st.sampled_from(["evaluate", "plot", "resume"]))
    argv = {"evaluate": ["evaluate", str(run), "--episodes", "1"],
            "plot": ["plot", str(run), "--out", str(root / "curve.png")],
            "resume": ["train", "--resume", str(run), "--no-progress"]}[command]  # at its total: trains nothing
    _check(argv, root, capfd)


@settings(max_examples=30, **SETTINGS)
@given(data=st.data())
def test_onnx_file_contents(tmp_path_factory: pytest.TempPathFactory, capfd: pytest.CaptureFixture[str],
                            data: st.DataObject) -> None:
    root = tmp_path_factory.mktemp("onnx")
    meta = {**make_metadata(3, 1, bound=2.0), "task": "Pendulum-v1", "gym_id": "Pendulum-v1"}
    good = write_mlp(root / "good.onnx", obs_dim=3, act_dim=1, bound=2.0, metadata=meta).read_bytes()
    (root / "good.onnx").unlink()
    path = root / "p.onnx"
    path.write_bytes(_mutated(good, data))
    task = data.draw(st.sampled_from([[], ["--task", "inverted-pendulum"], ["--task", "Pendulum-v1"]]))
    _check(["run-onnx", str(path), "--episodes", "1", *task], root, capfd)
