# One image for every PetroStream job: the stream consumer (default command), the producer
# (`python -m engine replay ...`) and the portal (`streamlit run control_center/app.py ...`).

# --- build: resolve the pinned runtime requirements into a self-contained virtualenv ---
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

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
    HEALTHCHECK_URL=http://127.0.0.1:8080/health \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    NUMBA_CPU_NAME=generic

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
COPY ml/ ml/
COPY control_center/ control_center/
COPY pages/ pages/
COPY deploy/ deploy/

USER 10001:10001
# The consumer walks the model's trees with a numba kernel (engine/tree_walk.py). Compiling it
# costs about a second of CPU, four at a Fargate task's 0.25 vCPU, so it is compiled here, into
# numba's cache under /tmp, which ECS copies into the task's /tmp volume (the VOLUME below) with
# the rest of the directory. NUMBA_CPU_NAME=generic makes that machine code valid on whatever
# x86-64 host runs the task (numba otherwise keys its cache on the build host's CPU model).
RUN python -c "__import__('engine.tree_walk').tree_walk.warm_up()"
VOLUME ["/tmp"]
EXPOSE 8080 8501

# The consumer's health endpoint; the portal sets HEALTHCHECK_URL to Streamlit's
# /_stcore/health. Python's urllib, because the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=4).status != 200)"]

CMD ["python", "-m", "engine", "consume"]
