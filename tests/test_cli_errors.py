"""Issue 14's CLI cases, in-process through ``main(argv)``: every user error is exit 2 with ONE
``trpo...: error:`` line and nothing written; runs that are busy are read, not written; the docs' promises
(any gymnasium id is a task) hold. The first list is the issue's; the second is the later hostile pass.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

import pytest

from cli_helpers import snapshot
from export.builders import make_metadata, write_mlp
from trpo_tf.app.cli import main

Setup = Callable[[Path, Path], list[str]]  # (scratch dir, copy of a trained run) -> argv



def _onnx(path: Path, obs_dim: int = 3) -> Path:
    meta = {**make_metadata(obs_dim, 1, bound=2.0), "task": "Pendulum-v1", "gym_id": "Pendulum-v1"}
    return write_mlp(path, obs_dim=obs_dim, act_dim=1, bound=2.0, metadata=meta)


def _write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def _metrics_row(run: Path, first: str, second: str) -> None:
    """Append a row of the file's width whose first two cells are ``first`` and ``second``."""
    width = len((run / "metrics.csv").read_text().splitlines()[0].split(","))
    with open(run / "metrics.csv", "a") as f:
        f.write(",".join([first, second] + ["1"] * (width - 2)) + "\n")


TRAIN = ["train", "--task", "Pendulum-v1", "--no-progress", "--steps", "256"]  # bounded if a check regresses
ISSUE_CASES: dict[str, tuple[Setup, str]] = {
    "config binary": (lambda t, r: [*TRAIN, "--config", str(_write(t / "c.yaml", os.urandom(64) + b"\xff")),
                                    "--out", str(t / "new")], "not UTF-8"),
    "config not utf-8": (lambda t, r: [*TRAIN, "--config", str(_write(t / "c.yaml", "max_kl: 0.02 # caf\xe9"
                                                                      .encode("latin-1"))),
                                       "--out", str(t / "new")], "not UTF-8"),
    "run.json binary": (lambda t, r: (_write(r / "run.json", b"\x00\xff" * 40), ["evaluate", str(r)])[1],
                        "run.json is not UTF-8"),
    "run.json wrong shape": (lambda t, r: (_write(r / "run.json", "[1, 2]"), ["evaluate", str(r)])[1],
                             "must hold a JSON object"),
    "run.json wrong types": (lambda t, r: (_write(r / "run.json", json.dumps(
        {**json.loads((r / "run.json").read_text()), "obs_dim": "three"})), ["evaluate", str(r)])[1],
        "wrong value for obs_dim"),
    "metrics.csv binary": (lambda t, r: (_write(r / "metrics.csv", b"\xff\xfe\x00" * 30),
                                         ["plot", str(r), "--out", str(t / "c.png")])[1], "not UTF-8"),
    "metrics.csv non-numeric row (plot)": (lambda t, r: (_metrics_row(r, "3", "abc"),
                                                         ["plot", str(r), "--out", str(t / "c.png")])[1],
                                           "is not a number"),
    "metrics.csv non-numeric row (resume)": (lambda t, r: (_metrics_row(r, "x", "1"),
                                                           ["train", "--resume", str(r), "--no-progress"])[1],
                                             "is not a number"),
    "--seed -1": (lambda t, r: [*TRAIN, "--seed", "-1", "--out", str(t / "new")], "expected a seed"),
    "env_kwargs rejected": (lambda t, r: [*TRAIN, "--set", "env_kwargs={foo: 1}", "--out", str(t / "new")],
                            "rejected env_kwargs"),
    "discrete observation space": (lambda t, r: ["train", "--task", "FrozenLake-v1", "--out", str(t / "new")],
                                   "observation space Discrete(16) is not supported"),
    "missing Box2D": (lambda t, r: ["train", "--task", "LunarLanderContinuous-v3", "--out", str(t / "new")],
                      'pip install "gymnasium[box2d]"'),
    "export --out under a file": (lambda t, r: ["export", str(r), "--out", str(_write(t / "f", "x") / "p.onnx")],
                                  "is a file, not a directory"),
    "plot --out under a file": (lambda t, r: ["plot", str(r), "--out", str(_write(t / "f", "x") / "c.png")],
                                "is a file, not a directory"),
    "render --out under a file": (lambda t, r: ["render", str(r), "--out", str(_write(t / "f", "x") / "v.mp4")],
                                  "is a file, not a directory"),
    "run-onnx truncated": (lambda t, r: ["run-onnx", str(_write(t / "p.onnx", _onnx(t / "full.onnx")
                                                                .read_bytes()[:700]))], "not a loadable ONNX"),
    "run-onnx empty": (lambda t, r: ["run-onnx", str(_write(t / "p.onnx", b""))], "not a loadable ONNX"),
    "run-onnx not ONNX": (lambda t, r: ["run-onnx", str(_write(t / "p.onnx", "hello\n"))], "not a loadable ONNX"),
    "run-onnx --task of another size": (lambda t, r: ["run-onnx", str(_onnx(t / "p.onnx")), "--task",
                                                      "inverted-pendulum"], "obs_dim 3 vs 4"),
    "init_log_std=.nan": (lambda t, r: [*TRAIN, "--set", "init_log_std=.nan", "--out", str(t / "new")],
                          "init_log_std must be a finite number"),
    "max_kl=.inf": (lambda t, r: [*TRAIN, "--set", "max_kl=.inf", "--out", str(t / "new")],
                    "max_kl must be a finite number"),
    "tasks ''": (lambda t, r: ["tasks", ""], "task name is empty"),
    "export --out an existing directory": (lambda t, r: ["export", str(r), "--out", str(t)],
                                           "is a directory; give a file name"),
}
SECOND_PASS: dict[str, tuple[Setup, str]] = {
    "--out is a dangling symlink": (lambda t, r: (os.symlink(t / "nowhere", t / "link"),
                                                  ["plot", str(r), "--out", str(t / "link" / "c.png")])[1],
                                    "broken symbolic link"),
    "run.json is a directory": (lambda t, r: ((r / "run.json").unlink(), (r / "run.json").mkdir(),
                                              ["evaluate", str(r)])[2], "not a trpo-tf run directory"),
    "metrics.csv is empty": (lambda t, r: (_write(r / "metrics.csv", ""),
                                           ["plot", str(r), "--out", str(t / "c.png")])[1], "no column"),
    "--config is a directory": (lambda t, r: ((t / "d.yaml").mkdir(), [*TRAIN, "--config", str(t / "d.yaml"),
                                                                       "--out", str(t / "new")])[1],
                                "Is a directory"),
    "config with a python tag": (lambda t, r: [*TRAIN, "--config", str(_write(
        t / "c.yaml", "max_kl: !!python/object/apply:os.system ['true']\n")), "--out", str(t / "new")],
        "not valid YAML"),
    "unicode config path": (lambda t, r: [*TRAIN, "--config", str(_write(t / "ünï-路径.yaml", "max_kl: -1\n")),
                                          "--out", str(t / "новый")], "max_kl must be > 0"),
    "huge --steps": (lambda t, r: [*TRAIN, "--steps", str(10**30), "--out", str(t / "new")], "total_steps"),
    "huge hidden layer": (lambda t, r: [*TRAIN, "--set", "hidden_sizes=[1000000000]", "--out", str(t / "new")],
                          "hidden_sizes"),
    "env_kwargs that fail at the first step": (lambda t, r: [*TRAIN, "--set", "env_kwargs={g: abc}",
                                                             "--out", str(t / "new")], "fails with env_kwargs"),
    "train --out an existing file": (lambda t, r: [*TRAIN, "--out", str(_write(t / "f", "x"))],
                                     "is an existing file"),
    "run-onnx a directory": (lambda t, r: ["run-onnx", str(t)], "no such ONNX file"),
    "bench runtime --n 10": (lambda t, r: ["bench", "runtime", "--n", "10"], "expected an integer >= 100"),
    "bench envs of a gym id needing Box2D": (lambda t, r: ["bench", "envs", "--tasks", "LunarLander-v3",
                                                           "--steps", "10"], "Box2D is not installed"),
    "resume with config.yaml edited to NaN": (lambda t, r: (_write(r / "config.yaml", (r / "config.yaml")
                                                                   .read_text().replace("max_kl: 0.01",
                                                                                        "max_kl: .nan")),
                                                            ["train", "--resume", str(r)])[1], "finite"),
    "checkpoints is a file": (lambda t, r: (shutil.rmtree(r / "checkpoints"), _write(r / "checkpoints", "x"),
                                            ["evaluate", str(r)])[2], "has no checkpoint"),
}


def _run(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str, list[str]]:
    capfd.readouterr()
    code = main(argv)
    out, err = capfd.readouterr()
    return code, out, err.strip().splitlines()


@pytest.mark.parametrize("case", [*ISSUE_CASES, *SECOND_PASS])
def test_user_error_is_one_line_exit_2_and_writes_nothing(case: str, trained: Path, tmp_path: Path,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    setup, expected = {**ISSUE_CASES, **SECOND_PASS}[case]
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    argv = setup(scratch, run)
    before = snapshot(tmp_path)
    code, _, err = _run(argv, capfd)
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("trpo") and ": error: " in err[0], err
    assert expected in err[0]
    assert snapshot(tmp_path) == before


def test_tasks_describes_any_gymnasium_id(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["tasks", "Pendulum-v1"], capfd)
    assert code == 0, err
    assert out.startswith("Pendulum-v1  (Pendulum-v1, gymnasium") and "obs_dim 3, act_dim 1" in out
    code, out, _ = _run(["tasks", "--json", "MountainCarContinuous-v0"], capfd)
    assert code == 0 and json.loads(out)["obs_dim"] == 2


def test_a_damaged_index_does_not_hide_the_checkpoints(trained: Path, tmp_path: Path,
                                                       capfd: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    _write(run / "checkpoints" / "checkpoint", b"\xff\x00 not an index")
    code, out, err = _run(["evaluate", str(run), "--episodes", "1", "--json"], capfd)
    assert code == 0, err
    assert json.loads(out)["iteration"] == 2


def test_a_symlinked_run_and_a_unicode_output_path_work(trained: Path, tmp_path: Path,
                                                        capfd: pytest.CaptureFixture[str]) -> None:
    os.symlink(trained, tmp_path / "link")
    out = tmp_path / "ünï-路径" / "curve.png"
    code, _, err = _run(["plot", str(tmp_path / "link"), "--out", str(out)], capfd)
    assert code == 0 and out.is_file(), err


def test_a_busy_run_is_read_not_written(trained: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """While another process (here: a second open of the lock) holds the run, evaluate prints its result and
    leaves eval.json alone; plot into the run is refused naming the holder; plot elsewhere works."""
    from trpo_tf.run_lock import RunLock

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    with RunLock(run, "train"):
        code, out, err = _run(["evaluate", str(run), "--episodes", "1", "--json"], capfd)
        assert code == 0 and json.loads(out)["episodes"] == 1
        assert any("eval.json not written" in line and f"PID {os.getpid()}" in line for line in err), err
        assert not (run / "eval.json").exists()
        code, _, err = _run(["plot", str(run)], capfd)
        assert code == 2 and len(err) == 1 and f"PID {os.getpid()}" in err[0] and "in use" in err[0]
        code, _, err = _run(["plot", str(run), "--out", str(tmp_path / "c.png")], capfd)
        assert code == 0 and (tmp_path / "c.png").is_file(), err
    code, _, err = _run(["evaluate", str(run), "--episodes", "1"], capfd)
    assert code == 0 and (run / "eval.json").is_file(), err
