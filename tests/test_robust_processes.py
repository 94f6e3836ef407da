"""Issue 14 with real ``trpo`` processes: two writers on one run directory, a SIGKILLed lock holder, and
``--resume`` after the checkpoint index was deleted (continue from the newest intact checkpoint, keep every
metrics row and checkpoint file it did not verify)."""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cli_helpers import FAST, start, trpo, user_error_line

N_STEPS = 128
TRAIN = ["--task", "Pendulum-v1", "--set", f"n_steps={N_STEPS}", "eval_episodes=1", *FAST, "--no-progress"]
LOCK = ".trpo.lock"


def _rows(run: Path) -> list[str]:
    path = run / "metrics.csv"
    return path.read_text().splitlines()[1:] if path.exists() else []


def _iterations(run: Path) -> list[int]:
    with open(run / "metrics.csv", newline="") as f:
        return [int(r["iteration"]) for r in csv.DictReader(f)]


def _wait(condition, proc, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert proc.poll() is None, f"the first writer exited early (rc {proc.returncode})"
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the first writer")


def _holder(run: Path) -> int | None:
    try:
        return int(json.loads((run / LOCK).read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture(scope="module")
def writers(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A trains D; B (a fresh train into D) and C (a resume of D) start while A trains; A is SIGKILLed; E
    resumes D; F resumes it while E trains; E is stopped with SIGINT (Ctrl-C)."""
    run = tmp_path_factory.mktemp("lock") / "run"
    forever = str(100_000 * N_STEPS)
    a = start("train", *TRAIN, "--steps", forever, "--out", str(run))
    try:
        _wait(lambda: len(_rows(run)) >= 2 and (run / "checkpoints" / "checkpoint").exists(), a)
        with ThreadPoolExecutor(max_workers=2) as pool:  # B and C side by side
            b_job = pool.submit(trpo, "train", *TRAIN, "--steps", str(4 * N_STEPS), "--seed", "5", "--out", str(run),
                                timeout=900)
            c_job = pool.submit(trpo, "train", "--resume", str(run), "--steps", str(2 * N_STEPS), "--no-progress",
                                timeout=900)
            b, c = b_job.result(), c_job.result()
        alive = a.poll() is None
    finally:
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=30)
    stale = (run / LOCK).exists()
    seen = len(_rows(run))
    e = start("train", "--resume", str(run), "--steps", forever, "--no-progress")
    try:
        _wait(lambda: len(_rows(run)) > seen + 1, e)  # E is training (past A's rows)
        f = trpo("train", "--resume", str(run), "--steps", str(2 * N_STEPS), "--no-progress", timeout=900)
        e_alive = e.poll() is None
    finally:
        e.send_signal(signal.SIGINT)
        e_rc = e.wait(timeout=300)
    return {"run": run, "a_pid": a.pid, "b": b, "c": c, "alive": alive, "stale": stale, "e_pid": e.pid,
            "f": f, "e_alive": e_alive, "e_rc": e_rc, "e_rows": len(_rows(run)), "e_ckpt": _newest_checkpoint(run)}


def test_a_second_fresh_train_is_refused_naming_the_holder(writers: dict) -> None:
    assert writers["alive"], "A finished before B and C ran; the test proves nothing"
    line = user_error_line(writers["b"])
    assert f"PID {writers['a_pid']}" in line and "in use" in line
    assert len(writers["b"].stderr.strip().splitlines()) == 1


def test_a_resume_while_training_is_refused_naming_the_holder(writers: dict) -> None:
    line = user_error_line(writers["c"])
    assert f"PID {writers['a_pid']}" in line


def test_the_lock_of_a_sigkilled_holder_does_not_block(writers: dict) -> None:
    assert writers["stale"], "SIGKILL should leave the lock file behind (the kernel drops only the lock)"
    assert writers["e_alive"], "E finished before F ran; the test proves nothing"
    line = user_error_line(writers["f"])
    assert f"PID {writers['e_pid']}" in line


def test_ctrl_c_ends_training_cleanly_and_releases_the_lock(writers: dict) -> None:
    assert writers["e_rc"] == 130
    assert not (writers["run"] / LOCK).exists()


def test_ctrl_c_saves_a_checkpoint_at_the_last_finished_iteration(writers: dict) -> None:
    """A Ctrl-C ends the iteration it lands in and checkpoints it: a resume has nothing to redo."""
    assert writers["e_rows"] > 0 and writers["e_ckpt"] == writers["e_rows"]


def test_the_rows_of_the_run_never_interleave(writers: dict) -> None:
    run = writers["run"]
    iterations = _iterations(run)
    assert iterations == list(range(1, len(iterations) + 1))
    config = (run / "config.yaml").read_text()
    assert "seed: 0" in config  # B's --seed 5 never reached the run


def _newest_checkpoint(run: Path) -> int:
    return max(int(p.name.split("-")[1].split(".")[0]) for p in (run / "checkpoints").glob("ckpt-*.index"))


@pytest.fixture(scope="module")
def index_deleted(writers: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The interrupted run, copied; its checkpoint index deleted; resumed to 2 iterations past its newest
    checkpoint M (rows past M, written after it, may be dropped and re-made; rows up to M must not)."""
    import shutil

    run = tmp_path_factory.mktemp("index") / "run"
    shutil.copytree(writers["run"], run)
    (run / "checkpoints" / "checkpoint").unlink()
    m = _newest_checkpoint(run)
    rows = _rows(run)[:m]
    ckpts = {p.name: p.stat().st_mtime_ns for p in (run / "checkpoints").iterdir()}
    time.sleep(0.05)
    result = trpo("train", "--resume", str(run), "--steps", str((m + 2) * N_STEPS), "--no-progress", timeout=900)
    return {"run": run, "rows": rows, "ckpts": ckpts, "result": result, "m": m}


def test_resume_without_an_index_continues_from_the_newest_intact_checkpoint(index_deleted: dict) -> None:
    result = index_deleted["result"]
    assert result.returncode == 0, result.stderr
    m = index_deleted["m"]
    assert "resumed" in result.stderr and f"at iteration {m}," in result.stderr
    assert _iterations(index_deleted["run"]) == list(range(1, m + 3))


def test_resume_without_an_index_rewrites_no_row_and_no_checkpoint(index_deleted: dict) -> None:
    run = index_deleted["run"]
    m = index_deleted["m"]
    assert _rows(run)[:m] == index_deleted["rows"]  # byte for byte
    now = {p.name: p.stat().st_mtime_ns for p in (run / "checkpoints").iterdir()}
    kept = {name: t for name, t in index_deleted["ckpts"].items() if name.startswith(f"ckpt-{m}.")}
    assert kept and all(now[name] == t for name, t in kept.items())  # the verified one: read, never rewritten
    assert any(name.startswith(f"ckpt-{m + 2}.") for name in now)


def test_resume_with_nothing_intact_exits_2_and_touches_nothing(index_deleted: dict, tmp_path: Path,
                                                                 capfd: pytest.CaptureFixture[str]) -> None:
    """A user error read from the files alone: in-process through ``main(argv)`` (no process start-up needed)."""
    import shutil

    from cli_helpers import snapshot
    from trpo_tf.app.cli import main

    run = tmp_path / "run"
    shutil.copytree(index_deleted["run"], run)
    (run / "checkpoints" / "checkpoint").unlink()
    for data in (run / "checkpoints").glob("ckpt-*.data-*"):
        blob = bytearray(data.read_bytes())
        blob[len(blob) // 3: len(blob) // 3 + 64] = os.urandom(64)
        data.write_bytes(bytes(blob))
    before = snapshot(run)
    capfd.readouterr()
    code = main(["train", "--resume", str(run), "--steps", str((index_deleted["m"] + 9) * N_STEPS), "--no-progress"])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("trpo") and ": error: " in err[0], err
    assert "no intact checkpoint" in err[0]
    assert snapshot(run) == before


def test_ctrl_c_mid_export_leaves_no_partial_file_and_no_lock(index_deleted: dict, tmp_path: Path) -> None:
    """SIGINT while an export into the run holds its lock: exit 130, no temporary or half-written file."""
    import shutil

    from export.runtime import OnnxPolicy

    run = tmp_path / "run"
    shutil.copytree(index_deleted["run"], run)
    proc = start("export", str(run))
    _wait(lambda: _holder(run) == proc.pid, proc)
    time.sleep(0.5)  # into the conversion / parity gate
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=300)
    assert rc in (130, 0), rc  # 0 only if it had already finished
    assert not list(run.glob(".policy.onnx*")) and not list(run.glob("*.tmp"))
    assert not (run / LOCK).exists()
    if rc == 130:
        assert not (run / "policy.onnx").exists()
    else:
        OnnxPolicy(run / "policy.onnx")


def test_ctrl_c_after_the_export_is_written_keeps_its_exit_code_0(index_deleted: dict, tmp_path: Path) -> None:
    """A Ctrl-C once the file is written — while the report prints, while the command returns and frees its
    TensorFlow objects (CI once saw exit 130 there), or during the interpreter's teardown (~1.4 s of TensorFlow's
    C++ destructors; rc -2, as CI once saw from the export above) — leaves exit 0."""
    import shutil
    import subprocess

    from cli_helpers import TRPO_COMMAND
    from export.runtime import OnnxPolicy

    run = tmp_path / "run"
    shutil.copytree(index_deleted["run"], run)
    proc = subprocess.Popen([*TRPO_COMMAND, "export", str(run)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:  # the first line of the report: the file is written, the command not yet returned
        lines.append(line)
        if line.startswith("wrote "):
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, (proc.returncode, lines, rest)
    OnnxPolicy(run / "policy.onnx")
