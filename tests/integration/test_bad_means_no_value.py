"""Bad means no value and exact numbers, every hop real: an OPC UA server's variable turns
BadSensorFailure with the placeholder 0 beside it, another holds a Float (float32) 123.456, an
edge agent reads them and publishes to Mosquitto, the ingest bridge forwards to Kafka, the writer
stores in InfluxDB. The Bad point has no value field (status_code and quality only), so
`last(value)` still shows the last real measurement; the float32 is stored as 123.456."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from asyncua import ua
from asyncua.common.node import Node
from asyncua.ua.status_codes import StatusCodes

from ingest.bridge import Bridge
from ingest.config import IngestConfig
from ingest.writer import Writer
from tests.support.agent import agent_config, running
from tests.support.ingest import (
    bridge_running,
    forget_session,
    influxql,
    pipeline_config,
    points,
    writer_running,
)
from tests.support.opcua import opc_source, opcua_plc
from tests.support.ports import free_port
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

TEMPERATURE = "machine = 'press-01' AND signal = 'temperature'"
LOAD = "machine = 'press-01' AND signal = 'load'"


@pytest.fixture
def client_id(namespace: str, mqtt_url: str) -> Iterator[str]:
    yield f"{namespace}-bridge"
    forget_session(mqtt_url, f"{namespace}-bridge")


@pytest.fixture
async def config(
    namespace: str, mqtt_url: str, kafka_bootstrap: str, influx_url: str, client_id: str
) -> AsyncIterator[IngestConfig]:
    yield pipeline_config(namespace, (mqtt_url, kafka_bootstrap, influx_url), client_id)
    await influxql(influx_url, f'DROP DATABASE "{namespace}"')


async def test_a_bad_reading_is_stored_without_a_value_and_a_float32_exactly(
    config: IngestConfig, mqtt_url: str, namespace: str, influx_url: str
) -> None:
    db = config.influxdb.database
    failed_at = datetime.now(UTC).replace(microsecond=250_000)
    async with opcua_plc(free_port()) as plc:
        press = await plc.vars["press-01/temperature"].get_parent()
        assert press is not None
        load = await press.add_variable(
            plc.namespace_index, "load", ua.Variant(0.5, ua.VariantType.Float)
        )
        async with (
            writer_running(Writer(config)),
            bridge_running(Bridge(config)),
            running(agent_config(mqtt_url, namespace, [opc_source(plc.endpoint)])),
        ):
            failed_at = await _fail_and_hold(plc.vars["press-01/temperature"], load, influx_url, db)
    await _check(influx_url, db, failed_at)


async def _fail_and_hold(temperature: Node, load: Node, influx_url: str, db: str) -> datetime:
    """The temperature sensor fails after its first value is stored; the load holds a float32.
    Returns when the sensor failed."""

    async def stored(where: str, count: int) -> bool:
        return len(await points(influx_url, db, f"WHERE {where}")) >= count

    await async_wait_for(lambda: stored(TEMPERATURE, 1), 60, "the first temperature point")
    # After the initial value's timestamp: the Bad point is the series' latest.
    failed_at = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=250_000)
    await temperature.write_value(
        ua.DataValue(
            ua.Variant(0.0, ua.VariantType.Double),  # the server's placeholder
            StatusCode=ua.StatusCode(ua.UInt32(StatusCodes.BadSensorFailure)),
            SourceTimestamp=failed_at,  # type: ignore[arg-type]  # asyncua's DateTime type
        )
    )
    await load.write_value(
        ua.DataValue(
            ua.Variant(123.456, ua.VariantType.Float),
            SourceTimestamp=failed_at,  # type: ignore[arg-type]  # asyncua's DateTime type
        )
    )
    await async_wait_for(lambda: stored(TEMPERATURE, 2), 60, "the Bad temperature point")
    await async_wait_for(lambda: stored(LOAD, 2), 60, "the float32 load point")
    return failed_at


async def _check(influx_url: str, db: str, failed_at: datetime) -> None:
    temperature = await points(influx_url, db, f"WHERE {TEMPERATURE}")
    good, bad = sorted(temperature, key=lambda row: row["time"])
    assert (good["value"], good["quality"], good["status_code"]) == (20.0, "good", 0)
    assert (
        bad["time"]
        == (failed_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
    )
    assert (bad["quality"], bad["status_code"]) == ("bad", StatusCodes.BadSensorFailure)
    assert bad["value"] is None and bad["value_str"] is None  # noqa: PT018 (no value field)
    # No value field at all on the Bad point: counting the field finds only the good one, and
    # the latest value of the series is still the last real measurement.
    counted = await influxql(
        influx_url, f"SELECT count(value), count(status_code) FROM readings WHERE {TEMPERATURE}", db
    )
    assert counted["series"][0]["values"][0][1:] == [1, 2]
    last = await influxql(influx_url, f"SELECT last(value) FROM readings WHERE {TEMPERATURE}", db)
    assert last["series"][0]["values"][0][1] == 20.0
    load = max(await points(influx_url, db, f"WHERE {LOAD}"), key=lambda r: r["time"])
    assert repr(load["value"]) == "123.456"  # not 123.45600128173828
