"""Checks the commands run on what the user typed, before any work or any write (issue 14).

* :func:`check_output_file` — an ``--out`` path must name a file whose directory exists or can be created:
  not a directory, not under an existing file, not in an unwritable directory. Checked before the slow part
  (an export's parity gate, a render) so the error is immediate and names the user's path.
* :func:`run_write_lock` — what "writing into a run" means for the commands other than ``train``: the run's
  lock is taken only when the output file lies inside the run directory, and held while the command
  works, so a ``train --resume`` cannot start meanwhile; with the output elsewhere the command only reads
  the run and never locks it (it works on a run that is training).
"""

from __future__ import annotations

import os
from pathlib import Path

from trpo_tf.run_lock import RunLock


class OutputPathError(ValueError):
    """An output path that cannot be written. Its message is one readable line."""


def check_output_file(path: str | os.PathLike, what: str, example: str) -> Path:
    """``path`` resolved for a later atomic write; :class:`OutputPathError` if it cannot be one.
    ``example`` is a file name suggested when ``path`` is a directory (e.g. ``policy.onnx``)."""
    out = Path(path)
    if out.is_dir():
        raise OutputPathError(f"{what} {out} is a directory; give a file name, e.g. {out / example}")
    if out.name in ("", ".", ".."):
        raise OutputPathError(f"{what} {str(path)!r} does not name a file")
    ancestor = out.parent
    while not ancestor.exists():
        if ancestor.is_symlink():  # a dangling symlink: mkdir would fail on it
            raise OutputPathError(f"cannot write {what} {out}: {ancestor} is a broken symbolic link")
        if ancestor == ancestor.parent:
            break
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise OutputPathError(f"cannot write {what} {out}: {ancestor} is a file, not a directory")
    if ancestor.exists() and not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write {what} {out}: directory {ancestor} is not writable")
    return out


def inside(path: Path, directory: Path) -> bool:
    """True if ``path`` (which may not exist yet) lies inside ``directory`` (symlinks resolved)."""
    try:
        return path.resolve().is_relative_to(directory.resolve())
    except OSError:
        return False


def run_write_lock(run_dir: str | os.PathLike, out: Path, command: str) -> RunLock | None:
    """The run's lock, acquired, if ``out`` lies inside ``run_dir``; None (nothing locked) otherwise.
    Raises RunLockedError naming the holder when the run is busy (e.g. training)."""
    if not inside(out, Path(run_dir)):
        return None
    return RunLock(run_dir, command).acquire()
