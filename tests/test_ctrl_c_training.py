"""Ctrl-C in a terminal reaches the whole process group: a `trpo train` with worker processes
(`vector_env: workers`) then stops after the iteration it is in, saves its checkpoint, exits 130 with one line
saying how to continue, leaves no worker behind, and `--resume` continues from that very iteration."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from pathlib import Path

from cli_helpers import FAST, TRPO_COMMAND, trpo

SETTINGS = ["--task", "Pendulum-v1", "--no-progress", "--set", "n_steps=128", "eval_episodes=0",
            *[s for s in FAST if not s.startswith(("n_envs", "vector_env"))], "n_envs=2", "vector_env=workers"]


def _iterations(run: Path) -> list[int]:
    if not (run / "metrics.csv").exists():
        return []
    with open(run / "metrics.csv", newline="") as f:
        return [int(r["iteration"]) for r in csv.DictReader(f)]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_ctrl_c_to_the_process_group_checkpoints_the_last_iteration_and_resume_continues(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = subprocess.Popen([*TRPO_COMMAND, "train", *SETTINGS, "--steps", str(10**7), "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while len(_iterations(run)) < 3:  # past the first checkpoint-free iterations, off checkpoint_every's grid
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    workers = _children(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert any("checkpoint saved" in line and f"trpo train --resume {run}" in line for line in lines), lines
    assert "Traceback" not in err
    done = _iterations(run)
    checkpoints = sorted(int(p.name.split("-")[1].split(".")[0]) for p in (run / "checkpoints").glob("ckpt-*.index"))
    assert done == list(range(1, len(done) + 1)) and checkpoints[-1] == done[-1]
    assert not (run / ".trpo.lock").exists()
    time.sleep(0.5)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()
                and "Z" not in (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:1])]

    resumed = trpo("train", "--resume", str(run), "--steps", str(2 * 128 * (done[-1] + 2)), "--no-progress",
                   timeout=600)  # 2 envs x 128 steps an iteration
    assert resumed.returncode == 0, resumed.stderr
    assert f"at iteration {done[-1]}," in resumed.stderr
    assert _iterations(run) == list(range(1, done[-1] + 3))
