"""The parts of `workers: N` that need no process: how sources are spread, what a worker
collects, the frames on its stdout, and that changing `workers` needs a restart."""

from __future__ import annotations

import asyncio

import pytest

from edge_agent.config import AgentConfig
from edge_agent.reading_json import MachineJson
from edge_agent.reload import diff
from edge_agent.worker_frames import HEALTH, READINGS, SETUP, frame, read_frame
from edge_agent.worker_pool import assignments, health_names
from edge_agent.worker_process import Outbox
from plantmesh.contracts import AssetPath
from tests.support.agent import offline_config, offline_modbus


def config(workers: int, sources: int) -> AgentConfig:
    base = offline_config([offline_modbus(f"s{i}", machine=f"m{i}") for i in range(sources)])
    return base.model_copy(update={"workers": workers})


@pytest.mark.parametrize(
    ("workers", "sources", "expected"),
    [
        (2, 5, [["s0", "s2", "s4"], ["s1", "s3"]]),
        (4, 2, [["s0"], ["s1"]]),  # no worker without a source
        (1, 3, [["s0", "s1", "s2"]]),
    ],
)
def test_sources_are_spread_round_robin_in_config_order(
    workers: int, sources: int, expected: list[list[str]]
) -> None:
    parts = assignments(config(workers, sources))
    assert [[source.name for source in part] for part in parts] == expected


def test_the_devices_of_one_modbus_source_are_spread_too() -> None:
    source = offline_modbus("bus")
    first = source["devices"][0]
    source["devices"] = [first | {"unit_id": u, "machine": f"m{u}"} for u in range(1, 6)]
    agent = offline_config([source]).model_copy(update={"workers": 2})
    parts = assignments(agent)
    machines = [[d.machine for s in part for d in s.devices] for part in parts]  # type: ignore[union-attr]
    assert machines == [["m1", "m3", "m5"], ["m2", "m4"]]
    assert [health_names(s) for s in parts[1]] == [["bus.m2", "bus.m4"]]
    assert len(agent.sources[0].devices) == 5  # type: ignore[union-attr]  # the config is kept


def test_the_outbox_groups_by_machine_and_empties_on_take() -> None:
    outbox = Outbox()
    press = MachineJson(AssetPath(plant="p", area="a", line="l", machine="press"))
    pump = MachineJson(AssetPath(plant="p", area="a", line="l", machine="pump"))
    outbox.add(press, ["1"])
    outbox.add(pump, ["2"])
    outbox.add(press, ["3", "4"])
    assert outbox.take() == [
        (press.key, press.asset_json, ["1", "3", "4"]),
        (pump.key, pump.asset_json, ["2"]),
    ]
    assert outbox.take() == []


async def test_frames_round_trip_and_the_end_of_the_stream_is_none() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(frame(READINGS, [("p/a/l/m", "{}", ["x"])]) + frame(HEALTH, []))
    reader.feed_data(frame(HEALTH, [{"name": "s"}])[:3])  # a worker killed mid-frame
    reader.feed_eof()
    assert await read_frame(reader) == (READINGS, [("p/a/l/m", "{}", ["x"])])
    assert await read_frame(reader) == (HEALTH, [])
    assert await read_frame(reader) is None


def test_changing_workers_needs_a_restart() -> None:
    assert diff(config(1, 2), config(2, 2)).needs_restart == ["workers"]


async def test_the_setup_frame_keeps_the_secrets_a_worker_needs() -> None:
    # A JSON dump would mask an OPC UA user's password; the worker must log in with it.
    source = {
        "type": "opcua",
        "name": "opc",
        "endpoint": "opc.tcp://127.0.0.1:4840",
        "browse": [{"root": "Site"}],
        "username": "operator",
        "password": "s3cret",
    }
    agent = offline_config([source])
    reader = asyncio.StreamReader()
    reader.feed_data(frame(SETUP, [agent, "info", "text"]))
    reader.feed_eof()
    setup = await read_frame(reader)
    assert setup is not None
    kind, (config_, level, log_format) = setup
    assert (kind, level, log_format) == (SETUP, "info", "text")
    assert config_ == agent
    password = config_.sources[0].password  # type: ignore[union-attr]
    assert password is not None
    assert password.get_secret_value() == "s3cret"
