"""A port already taken is a clear, typed error, and nothing is left running."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantmesh.modbus_profile import load_profile
from simulators import NetworkConfig, Simulation, SimulatorError
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

PROFILES = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "profiles"


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def network(opcua_port: int, modbus_port: int) -> NetworkConfig:
    return NetworkConfig.model_validate(
        {
            "plants": [
                {
                    "id": "plant-p",
                    "opcua": {"port": opcua_port},
                    "modbus": {"port": modbus_port},
                    "machines": [
                        {"id": "mill-01", "area": "a", "line": "l", "class": "cnc_mill",
                         "protocol": "opcua"},
                        {"id": "pump-01", "area": "a", "line": "l", "class": "centrifugal_pump",
                         "protocol": "modbus", "unit_id": 1,
                         "profile": load_profile(PROFILES / "centrifugal_pump.yaml")},
                    ],
                }
            ]
        }
    )  # fmt: skip


@pytest.mark.parametrize("server", ["opcua", "modbus"])
async def test_taken_port_is_a_simulator_error_naming_plant_and_port(
    server: str, taken_port: int
) -> None:
    other = free_port()
    ports = (taken_port, other) if server == "opcua" else (other, taken_port)
    sim = Simulation(network(*ports))
    with pytest.raises(
        SimulatorError, match=rf"plant-p: .* cannot listen on 127.0.0.1:{taken_port}"
    ):
        async with sim.serving():
            pytest.fail("serving with a taken port")
    # The plant's other server does not linger on its port.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", other))
