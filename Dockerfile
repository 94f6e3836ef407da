# trpo-tf: train robot policies (MuJoCo, PyBullet) headless, export them to ONNX.
#   docker build -t trpo-tf .
#   docker run --rm -v "$PWD/runs:/runs" trpo-tf demo
#   docker run --rm -v "$PWD/runs:/runs" trpo-tf train --task hopper-bullet --out /runs/hopper
FROM python:3.11-slim

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
    MUJOCO_GL=osmesa

# Same install as README: `pip install .` from a checkout.
WORKDIR /opt/trpo-tf
COPY pyproject.toml README.md ./
COPY trpo_tf ./trpo_tf
COPY robots ./robots
COPY export ./export
RUN pip install --no-cache-dir .

# A non-root user; runs are written to the mounted volume.
RUN useradd --create-home --uid 1000 trpo \
    && mkdir -p /runs \
    && chown trpo:trpo /runs
USER 1000:1000
WORKDIR /runs
VOLUME /runs

ENTRYPOINT ["trpo"]
CMD ["--help"]
