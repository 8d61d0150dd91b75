# syntax=docker/dockerfile:1
# The central services in one image: `ingest bridge`, `ingest writer`, `alerting run` and
# `alerting alarms` (API and console), chosen by the command (see deploy/compose/compose.yaml).
#   docker build -f deploy/images/central.Dockerfile -t plantmesh-central .   # from the repo root
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
COPY pyproject.toml README.md ./
COPY plantmesh/ plantmesh/
COPY edge_agent/ edge_agent/
COPY ingest/ ingest/
COPY alerting/ alerting/
COPY simulators/ simulators/
# alerting/issue-types.yaml links here; the wheel carries the file itself.
COPY deploy/alerting/issue-types.yaml deploy/alerting/
# Binary wheels only, as in the edge image.
RUN pip wheel --no-cache-dir --only-binary=:all: --wheel-dir /wheels ".[ingest,alerting]"

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PLANTMESH_LOG_FORMAT=json
# The wheels come in through a bind mount, so no layer of this image keeps them.
# /var/lib/plantmesh: the alert log; a volume mounted there starts owned by the service user.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels "plantmesh[ingest,alerting]" \
    && groupadd --gid 10001 plantmesh \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/plantmesh \
       --shell /usr/sbin/nologin plantmesh \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/plantmesh \
    && install -d -m 0755 /etc/plantmesh
USER 10001:10001
# The alarm API and console; the bridge's and writer's /metrics ports are set in their config.
EXPOSE 8600
# No HEALTHCHECK here: each role has its own endpoint (or none), so compose.yaml sets them.
ENTRYPOINT ["plantmesh"]
CMD ["--help"]
