"""Helpers for the tests that drive the installed ``trpo`` command in real subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TRPO = shutil.which("trpo", path=str(Path(sys.executable).parent)) or shutil.which("trpo")

# Tiny, fast training settings: no XLA compile (saves ~15 s per process), short batches.
FAST = ["jit_compile=false", "n_envs=1", "vector_env=sync", "critic_epochs=2"]


def trpo(*args: str, cwd: str | os.PathLike | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run ``trpo ARGS`` and capture its output (text)."""
    assert TRPO is not None, "the trpo console script is not installed (pip install -e .)"
    return subprocess.run([TRPO, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def start(*args: str, cwd: str | os.PathLike | None = None) -> subprocess.Popen:
    """Start ``trpo ARGS`` in the background (stdout/stderr discarded)."""
    assert TRPO is not None
    return subprocess.Popen([TRPO, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and mtime: compare two snapshots to prove nothing was written."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()} | {"<dirs>": (sum(1 for p in root.rglob("*")
                                                                                 if p.is_dir()), 0)}


def user_error_line(result: subprocess.CompletedProcess) -> str:
    """The ``trpo...: error: ...`` line of a failed run (asserting it is the last line, with no traceback)."""
    assert result.returncode == 2, f"rc {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines, "no message on stderr"
    assert lines[-1].startswith("trpo") and ": error: " in lines[-1], result.stderr
    return lines[-1]
