# One image for every PetroStream job: the stream consumer (default command), the producer
# (`python -m engine replay ...`) and the portal (`streamlit run control_center/app.py ...`).

# --- build: resolve the pinned runtime requirements into a self-contained virtualenv ---
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY requirements.txt constraints.txt /tmp/
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt -c /tmp/constraints.txt

# The C kernels (engine/*.c: the features' and the model's tree walk) are compiled here, for the image's platform,
# and only their shared libraries go to the runtime image: the runtime has no compiler, and its
# root file system is read-only, so nothing may be built there. A library's file name carries a
# hash of its source and flags, which the runtime's engine/ recomputes (engine/native.py), so a
# stale build is never loaded.
# C through ctypes rather than numba: no JIT cache to keep warm in a read-only image, and no
# ~1 s import and ~140 MB of LLVM in every consumer (docs/BENCHMARKS.md, issue 14).
# The compiler is not pinned: it never reaches the runtime image, and the kernels' numbers do
# not depend on its version (exact IEEE flags, no fast math; tests/test_feature_kernel.py).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY engine/ engine/
RUN /opt/venv/bin/python -m engine.native

# --- runtime: the virtualenv and the application code, run as an unprivileged user ---
FROM python:3.11-slim AS runtime

# HOME and PETROSTREAM_HOME point at /tmp because ECS mounts the root file system
# read-only and gives each task a writable /tmp volume. Static serving: the well map's
# Leaflet comes from control_center/static/, not a CDN.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    PETROSTREAM_HOME=/tmp/petrostream \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    STREAMLIT_SERVER_ENABLE_STATIC_SERVING=true \
    PETROSTREAM_HEALTH_PORT=8080 \
    HEALTHCHECK_URL=http://127.0.0.1:8080/health

# /tmp becomes the task's bind-mount volume (VOLUME below): Fargate copies this directory's
# owner and mode into it, where it would otherwise be root-owned 0755 and unwritable to us.
RUN groupadd --system --gid 10001 petrostream \
    && useradd --system --uid 10001 --gid petrostream --no-create-home --home-dir /tmp petrostream \
    && mkdir -p /tmp/petrostream \
    && chown 10001:10001 /tmp /tmp/petrostream \
    && chmod 1777 /tmp

WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY engine/ engine/
COPY --from=build /build/engine/_*.so engine/
COPY ml/ ml/
COPY control_center/ control_center/
COPY pages/ pages/
COPY deploy/ deploy/

USER 10001:10001
VOLUME ["/tmp"]
EXPOSE 8080 8501

# The consumer's health endpoint; the portal sets HEALTHCHECK_URL to Streamlit's
# /_stcore/health. Python's urllib, because the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=4).status != 200)"]

CMD ["python", "-m", "engine", "consume"]
