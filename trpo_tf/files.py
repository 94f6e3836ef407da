"""The one atomic-write helper: write under a temporary name in the same folder, fsync, rename.

A crash (or SIGKILL) at any moment leaves either the old file or the new one, never a partial file; a
failed write removes its temporary file. Used for run.json, config.yaml, eval.json, metrics.csv rewrites,
videos, plots and exported ONNX files.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same suffix, for writers that choose a format by it); when
    the block ends without an exception, fsync it and rename it over ``path``."""
    target = Path(path)
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.{secrets.token_hex(4)}.partial{target.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Replace ``path`` with ``data`` as indented JSON, atomically."""
    write_text_atomic(path, json.dumps(data, indent=2))
