"""One writer per run directory: an advisory ``flock`` on ``DIR/.trpo.lock`` that names its holder.

``trpo train`` (and ``--resume``) holds the lock for its whole life; evaluate, export, render and plot take
it only while they write a file into the run. A second writer does not wait: it fails at once with a
:class:`RunLockedError` naming the holder's PID and command.

Why ``fcntl.flock`` and not the ``filelock`` package: the kernel drops a flock when its holder dies (a
SIGKILLed ``trpo train`` leaves a stale file but no stale lock), which is all ``filelock`` would give us on
Linux, while the message needs the holder's PID, which we write into the lock file ourselves anyway.
Linux/macOS only (the project trains on Linux and in Docker); on NFS, flock is emulated with POSIX locks.

The lock file is removed on release. Removing a lock file is racy unless every acquirer checks, after
locking, that the path still names the inode it locked; :meth:`RunLock.acquire` does and retries otherwise.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from pathlib import Path
from types import TracebackType

from trpo_tf.run_errors import RunDirError

LOCK_NAME = ".trpo.lock"


class RunLockedError(RunDirError):
    """Another live process holds the run directory's lock. Its message is one readable line."""

    def __init__(self, run_dir: Path, pid: int | None, command: str | None) -> None:
        self.run_dir, self.pid, self.command = run_dir, pid, command
        who = f"PID {pid}" if pid is not None else "a process whose PID is not recorded"
        what = f" (trpo {command})" if command else ""
        super().__init__(f"run directory {run_dir} is in use by {who}{what}; "
                         "wait for it to finish or stop it, then try again")


class RunLock:
    """``with RunLock(run_dir, "train"):`` — exclusive, non-blocking, released on exit or on process death."""

    def __init__(self, run_dir: str | os.PathLike, command: str) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.command = command
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "RunLock":
        """Take the lock or raise :class:`RunLockedError` (busy) / :class:`RunDirError` (cannot write)."""
        if self._fd is not None:
            return self
        for _ in range(100):  # only repeats when a holder removed the file between our open and our flock
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise RunDirError(f"cannot write into run directory {self.run_dir}: "
                                  f"{exc.strerror or exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise RunDirError(f"cannot lock run directory {self.run_dir}: {exc.strerror or exc}") from None
                pid, command = self._read_holder()
                raise RunLockedError(self.run_dir, pid, command) from None
            if _same_file(fd, self.path):
                os.ftruncate(fd, 0)
                record = json.dumps({"pid": os.getpid(), "command": self.command,
                                     "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
                os.write(fd, (record + "\n").encode("utf-8"))
                self._fd = fd
                return self
            os.close(fd)  # we locked a file its holder had just removed: lock the new one instead
        raise RunDirError(f"cannot lock run directory {self.run_dir}: the lock file keeps changing")

    def release(self) -> None:
        """Remove the lock file (while still holding it), then unlock."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if _same_file(fd, self.path):
                os.unlink(self.path)
        except OSError:
            pass  # a read-only or vanished directory: the kernel still drops the lock on close
        finally:
            os.close(fd)

    @classmethod
    def check_free(cls, run_dir: str | os.PathLike) -> None:
        """Raise :class:`RunLockedError` if a live process holds ``run_dir``'s lock; changes nothing on disk
        (a stale lock file of a dead process is left where it is)."""
        probe = cls(run_dir, "")
        try:
            fd = os.open(probe.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return  # no lock file (or unreadable): nobody can be holding it through us
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            pid, command = probe._read_holder()
            raise RunLockedError(probe.run_dir, pid, command) from None
        finally:
            os.close(fd)  # closing drops the shared lock we may have taken

    def _read_holder(self, attempts: int = 20) -> tuple[int | None, str | None]:
        """The holder's PID and command from the lock file (it writes them right after locking)."""
        for _ in range(attempts):
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                return int(data["pid"]), str(data.get("command") or "") or None
            except (OSError, ValueError, KeyError, TypeError):
                time.sleep(0.02)
        return None, None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def __del__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def is_lock_file(path: Path) -> bool:
    """True for the lock file (ignored when deciding whether a directory is empty)."""
    return path.name == LOCK_NAME


def lock_run_for_training(run_dir: str | os.PathLike, resume: bool) -> RunLock:
    """The lock a training run holds for its life. A new run's directory is created here (with missing
    parents) and must hold nothing but the lock file once locked; on any refusal the directories this call
    created are removed again, so a refused command leaves nothing behind."""
    path = Path(run_dir)
    if resume:
        return RunLock(path, "train --resume").acquire()
    created = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_empty(created)
        raise RunDirError(f"cannot create run directory {path}: {exc.strerror or exc}") from None
    lock = RunLock(path, "train")
    try:
        lock.acquire()
        if any(not is_lock_file(p) for p in path.iterdir()):
            raise RunDirError(f"{path} already exists and is not empty; use --resume or a new --out")
    except BaseException:
        lock.release()
        _remove_empty(created)
        raise
    return lock


def _remove_empty(created: list[Path]) -> None:
    for p in created:  # deepest first
        try:
            p.rmdir()
        except OSError:
            break
