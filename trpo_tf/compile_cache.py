"""A persistent cache of XLA executables, so a run compiles only what no earlier run on this machine compiled.

Every training process traces and XLA-compiles the same few functions (the policy step, the critic fit, the
critic's values) for its batch shapes; on the 2-core machine that is most of a hopper run's first iteration
(1.9 s, against 0.5 s with the executables read back; docs/benchmarks.md, 2026-12-04). TensorFlow can keep
them on disk (``TF_XLA_FLAGS=--tf_xla_persistent_cache_directory=DIR``): it names an entry by the function's
signature and the fingerprint of its HLO, checks that fingerprint when it reads one back, and writes a new
entry to a temporary file that it then renames, so two processes never see half a file. The same HLO gives
the same executable, so a run's numbers do not depend on whether its executables came from the cache
(tests/test_compile_cache.py).

``trpo`` turns the cache on for its TensorFlow commands (:func:`enable`); library users may call
:func:`enable` themselves before their first compiled call. ``TRPO_XLA_CACHE`` chooses: unset → the default
directory (``$XDG_CACHE_HOME`` or ``~/.cache``, then ``trpo-tf/xla/tf-<version>-<cpu>``: an executable built
for one TensorFlow and one CPU's instruction set is never offered to another); a path → that directory;
``0`` / ``off`` / ``false`` → no cache. A ``--tf_xla_persistent_cache_directory`` already in
``TF_XLA_FLAGS`` is the user's choice and is kept. Deleting the directory is always safe.
"""

from __future__ import annotations

import hashlib
import os
from importlib import metadata
from pathlib import Path

ENV = "TRPO_XLA_CACHE"
FLAG = "--tf_xla_persistent_cache_directory"
_OFF = {"", "0", "off", "false", "no", "none"}


def _cpu_tag() -> str:
    """A short hash of the CPU's model and instruction-set flags (``/proc/cpuinfo``; the machine name elsewhere)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        text = "\n".join(sorted({line for line in lines if line.startswith(("model name", "flags"))}))
    except OSError:
        import platform

        text = platform.machine() + platform.processor()
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def default_directory() -> Path:
    """``<cache home>/trpo-tf/xla/tf-<version>-<cpu>``."""
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    try:
        version = metadata.version("tensorflow")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return home / "trpo-tf" / "xla" / f"tf-{version}-{_cpu_tag()}"


def directory() -> Path | None:
    """The directory ``TRPO_XLA_CACHE`` asks for, or None when it turns the cache off."""
    value = os.environ.get(ENV)
    if value is None:
        return default_directory()
    if value.strip().lower() in _OFF:
        return None
    return Path(value).expanduser()


def enable() -> Path | None:
    """Point TensorFlow's persistent XLA cache at :func:`directory` (adds the flag to ``TF_XLA_FLAGS``).

    Takes effect if called before the process's first XLA compilation (TensorFlow reads the flags then). Returns
    the directory in use: the user's own if ``TF_XLA_FLAGS`` already names one, None when the cache is off or the
    directory cannot be created (a read-only home: the run just compiles, as without the cache)."""
    flags = os.environ.get("TF_XLA_FLAGS", "")
    for token in flags.split():
        if token.startswith(FLAG + "="):
            return Path(token.split("=", 1)[1])
    path = directory()
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(path, os.W_OK | os.X_OK):
        return None
    os.environ["TF_XLA_FLAGS"] = f"{flags} {FLAG}={path}".strip()
    return path


__all__ = ["ENV", "default_directory", "directory", "enable"]
