"""Where integration tests get their real servers.

1. Environment variables PLANTMESH_MQTT_URL, PLANTMESH_KAFKA_BOOTSTRAP, PLANTMESH_INFLUX_URL.
2. (to come) testcontainers with the official images when a Docker engine is reachable.
3. (to come) the project's own local stack (`plantmesh stack up`).
"""

from __future__ import annotations

import os

import pytest


def _from_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the README's test command, or `plantmesh stack up`")
    return value


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    return _from_env("PLANTMESH_MQTT_URL")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return _from_env("PLANTMESH_KAFKA_BOOTSTRAP")


@pytest.fixture(scope="session")
def influx_url() -> str:
    return _from_env("PLANTMESH_INFLUX_URL")
