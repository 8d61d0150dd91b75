# syntax=docker/dockerfile:1
# The edge agent, for a gateway that runs containers: plantmesh[edge] only, no cloud-side library.
#   docker build -f deploy/images/edge.Dockerfile -t plantmesh-edge .       # from the repo root
#   docker run -d --restart unless-stopped --name plantmesh-agent \
#     -v /etc/plantmesh:/etc/plantmesh:ro -v plantmesh-buffer:/var/lib/plantmesh plantmesh-edge
# amd64 and arm64 (`docker buildx build --platform linux/arm64 ...`) install from wheels alone;
# armv7 has no wheels for some dependencies (deploy/systemd/README.md).
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
# Binary wheels only: the slim image has no compiler, and a missing wheel should fail the
# build here rather than half-compile something.
RUN pip wheel --no-cache-dir --only-binary=:all: --wheel-dir /wheels ".[edge]"

FROM ${PYTHON_IMAGE}
# STATE_DIRECTORY: where the agent keeps its disk buffer (as systemd's StateDirectory= does).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PLANTMESH_LOG_FORMAT=json \
    STATE_DIRECTORY=/var/lib/plantmesh
# The wheels come in through a bind mount, so no layer of this image keeps them.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels "plantmesh[edge]" \
    && groupadd --gid 10001 plantmesh \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/plantmesh \
       --shell /usr/sbin/nologin plantmesh \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/plantmesh \
    && install -d -m 0755 /etc/plantmesh
USER 10001:10001
# Unsent batches must survive the container: keep the buffer in a volume.
VOLUME ["/var/lib/plantmesh"]
# No HEALTHCHECK: the agent's only endpoint (/metrics) is off unless `metrics.listen` is set.
ENTRYPOINT ["plantmesh"]
CMD ["agent", "run", "--config", "/etc/plantmesh/agent.yaml"]
