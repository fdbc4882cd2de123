# berth: a Kubernetes scheduler in Python. The image runs `berth run` by default and `berth
# webhook` when given that command (the Helm chart's webhook Deployment does).
#
#   docker build -t ghcr.io/berth-scheduler/berth:0.1.0 .
#   docker run --rm ghcr.io/berth-scheduler/berth:0.1.0 --version
#
# Two stages: the build stage installs the package and its wheels into a virtualenv; the final
# stage copies only that virtualenv, so no pip cache, build files or sources ship.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/berth
WORKDIR /src
# Metadata first: the dependency layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
COPY scheduler ./scheduler
COPY plugins ./plugins
# Every dependency ships manylinux wheels for CPython 3.11 (numpy, orjson, uvloop, aiohttp,
# cryptography), so no compiler is needed. No extras: matplotlib (`bench`, for `berth bench`'s
# chart) stays out of the image. Byte-compile now: the root filesystem is read-only at run time.
RUN /opt/berth/bin/pip install . \
 && /opt/berth/bin/python -m compileall -q /opt/berth/lib \
 && /opt/berth/bin/berth --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="berth" \
      org.opencontainers.image.description="A Kubernetes scheduler in Python" \
      org.opencontainers.image.source="https://github.com/berth-scheduler/berth" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed, numeric non-root user, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
RUN groupadd --gid 65532 berth \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin berth
COPY --from=build /opt/berth /opt/berth
ENV PATH=/opt/berth/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
WORKDIR /tmp
# /metrics, /healthz, /readyz over HTTPS (berth run --secure-port; kube-scheduler's port).
# The webhook uses 9443 (HTTPS admission) and 8080 (/healthz).
EXPOSE 10259
ENTRYPOINT ["berth"]
CMD ["run", "--config", "/etc/berth/config.yaml"]
