# trpo-tf: train robot policies (MuJoCo, PyBullet) headless, export them to ONNX.
#   docker build -t trpo-tf .
#   docker run --rm -v "$PWD/runs:/runs" trpo-tf demo
#   docker run --rm -v "$PWD/runs:/runs" trpo-tf train --task hopper-bullet --out /runs/hopper
# The image carries Ray (the `ray` extra): the same image is a Ray head or worker node (docs/scaling.md,
# compose.ray.yaml), e.g. `docker run --entrypoint ray trpo-tf start --head --block`.
# Offline / air-gapped (and what CI does, with podman on a debootstrapped Debian 12 base):
#   docker/build.sh [--base IMAGE | --debootstrap]   (makes wheels/ with `pip wheel`, builds, smoke-runs)
# Needs BuildKit (Docker >= 23 or podman/buildah) for RUN --mount.
ARG BASE=python:3.11-slim
FROM ${BASE}

# Headless rendering: OSMesa for MuJoCo (MUJOCO_GL=osmesa), libGL for PyBullet and matplotlib.
# imageio-ffmpeg ships its own ffmpeg binary, so no system ffmpeg is needed.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libosmesa6 libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MUJOCO_GL=osmesa \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# A venv works the same on python:3.11-slim and on Debian's python3 (which refuses system-wide pip installs).
# The build context is bind-mounted (read-write, writes discarded), so neither the sources nor the
# wheelhouse become a layer. With a wheels/ folder in the context (`pip wheel --wheel-dir wheels .` on the
# host) everything comes from it and the package index is never contacted; without one, `pip install .`
# as in README.
# hadolint ignore=DL3013
RUN --mount=type=bind,target=/src,rw \
    python3 -m venv /opt/venv \
    && if [ -d /src/wheels ]; then \
           pip install --no-cache-dir --no-index --find-links /src/wheels "trpo-tf[ray]"; \
       else \
           pip install --no-cache-dir "/src[ray]"; \
       fi \
    && trpo --help > /dev/null \
    && ray --version

# A non-root user; runs are written to the mounted volume.
RUN useradd --create-home --uid 1000 trpo \
    && mkdir -p /runs \
    && chown trpo:trpo /runs
USER 1000:1000
WORKDIR /runs
VOLUME /runs

ENTRYPOINT ["trpo"]
CMD ["--help"]
