"""Helpers for the tests that drive the installed ``trpo`` command in real subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TRPO = shutil.which("trpo", path=str(Path(sys.executable).parent)) or shutil.which("trpo")
ROOT = Path(__file__).resolve().parents[1]


def script_target() -> str:
    """The ``trpo`` entry point pyproject.toml declares, e.g. ``trpo_tf.app.cli:main``."""
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["trpo"]


def _command() -> list[str]:
    """The installed console script; ``python -m trpo_tf`` (the same ``main``) while the installed script still
    points at an entry point this checkout no longer has (an editable install made before the entry moved:
    ``pip install -e .`` refreshes it)."""
    module = script_target().split(":")[0]
    if TRPO is not None and f"from {module} import" in Path(TRPO).read_text(errors="replace"):
        return [TRPO]
    return [sys.executable, "-m", "trpo_tf"]


TRPO_COMMAND = _command()

# Tiny, fast training settings: no XLA compile (saves ~15 s per process), short batches.
FAST = ["jit_compile=false", "n_envs=1", "vector_env=sync", "critic_epochs=2"]


def trpo(*args: str, cwd: str | os.PathLike | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run ``trpo ARGS`` and capture its output (text)."""
    assert TRPO is not None, "the trpo console script is not installed (pip install -e .)"
    return subprocess.run([*TRPO_COMMAND, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def start(*args: str, cwd: str | os.PathLike | None = None) -> subprocess.Popen:
    """Start ``trpo ARGS`` in the background (stdout/stderr discarded)."""
    assert TRPO is not None
    return subprocess.Popen([*TRPO_COMMAND, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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
