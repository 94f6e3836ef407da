"""The run-directory lock: one writer at a time, the holder's PID in the refusal, no stale lock after SIGKILL.

In-process cases use two RunLock objects (flock conflicts between open file descriptions, even in one
process); the death case uses a real child process killed with SIGKILL. The two-``trpo train`` case lives
in tests/test_robust_processes.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trpo_tf.run_dir import RunDirError
from trpo_tf.run_lock import LOCK_NAME, RunLock, RunLockedError, lock_run_for_training

HOLDER = """
import sys, time
from trpo_tf.run_lock import RunLock
lock = RunLock(sys.argv[1], "train").acquire()
print("locked", flush=True)
time.sleep(600)
"""


def test_second_writer_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    with RunLock(tmp_path, "train"):
        with pytest.raises(RunLockedError) as info:
            RunLock(tmp_path, "evaluate").acquire()
    message = str(info.value)
    assert f"PID {os.getpid()}" in message and "trpo train" in message and "\n" not in message
    assert info.value.pid == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()  # released and removed
    RunLock(tmp_path, "evaluate").acquire().release()  # free again


def test_lock_of_a_sigkilled_process_does_not_block(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=f"PID {child.pid}"):
            RunLock(tmp_path, "train").acquire()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert (tmp_path / LOCK_NAME).exists()  # the dead holder's file is still there ...
    lock = RunLock(tmp_path, "train").acquire()  # ... but its lock died with it
    assert f'"pid": {os.getpid()}' in (tmp_path / LOCK_NAME).read_text()
    lock.release()


def test_a_new_run_directory_is_removed_again_when_refused(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "config.yaml").write_text("task: x\n")
    with pytest.raises(RunDirError, match="already exists and is not empty"):
        lock_run_for_training(tmp_path / "busy", resume=False)
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == ["config.yaml"]
    # Missing parents are created for the lock and removed when the directory turns out unusable.
    target = tmp_path / "a" / "b" / "run"
    with RunLock(tmp_path, "train"):  # a lock elsewhere does not matter
        lock = lock_run_for_training(target, resume=False)
    assert target.is_dir() and (target / LOCK_NAME).exists()
    with pytest.raises(RunLockedError):
        lock_run_for_training(target, resume=False)
    lock.release()
    assert list(target.iterdir()) == []


def test_out_under_a_file_or_in_a_read_only_directory_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="cannot create run directory"):
        lock_run_for_training(tmp_path / "file" / "run", resume=False)
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(RunDirError, match="cannot write into run directory"):
            RunLock(ro, "evaluate").acquire()
    finally:
        ro.chmod(0o755)


def test_a_lock_file_replaced_while_waiting_is_not_trusted(tmp_path: Path) -> None:
    """Holder A removes its file on release; B, which opened the old file, must lock the new one."""
    a = RunLock(tmp_path, "train").acquire()
    stale_fd = os.open(tmp_path / LOCK_NAME, os.O_RDWR)  # what B would hold before A releases
    a.release()
    c = RunLock(tmp_path, "train").acquire()  # C creates and locks a fresh file
    import fcntl

    fcntl.flock(stale_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the orphaned inode is lockable ...
    os.close(stale_fd)
    with pytest.raises(RunLockedError):  # ... but RunLock checks the inode, so C's lock still counts
        RunLock(tmp_path, "train").acquire()
    c.release()
    time.sleep(0)
