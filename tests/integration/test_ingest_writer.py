"""The writer against real Kafka and InfluxDB: raw -> InfluxDB + normalized, DLQ, commits."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient

from ingest.config import IngestConfig
from ingest.line_protocol import timestamp_ns
from ingest.writer import Writer
from plantmesh.config import validate_config
from plantmesh.contracts import ReadingBatch, decode, encode
from plantmesh.topics import (
    HEADER_DLQ_DETAIL,
    HEADER_DLQ_REASON,
    HEADER_DLQ_SOURCE,
    HEADER_MQTT_TOPIC,
)
from tests.support.ingest import (
    KEY,
    T0,
    batch,
    influxql,
    points,
    produce,
    reading,
    start_writer_process,
    writer_running,
)
from tests.support.kafka import consume, create_small_topic, kafka_options
from tests.support.servers import influx_auth
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def config_data(namespace: str, kafka_bootstrap: str, influx_url: str) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "kafka": {"bootstrap": kafka_bootstrap, "client_id": namespace},
        "influxdb": {"url": influx_url, "bucket": f"{namespace}/autogen"},
        "writer": {"group_id": f"{namespace}-writer"},
        "backoff": {"initial_s": 0.05, "max_s": 0.2},
    }


@pytest.fixture
def config(config_data: dict[str, Any]) -> IngestConfig:
    return validate_config(IngestConfig, config_data)


@pytest.fixture
async def database(config: IngestConfig, influx_url: str) -> AsyncIterator[str]:
    """This test's own database, dropped afterwards (the writer creates it, or the test does)."""
    name = config.influxdb.database
    yield name
    await influxql(influx_url, f'DROP DATABASE "{name}"')


async def committed(bootstrap: str, group: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(**kafka_options(bootstrap))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


def headers_of(record: Any) -> dict[str, bytes]:
    return dict(record.headers)


async def test_raw_batch_is_written_forwarded_and_committed(
    config: IngestConfig, database: str, kafka_bootstrap: str, influx_url: str
) -> None:
    good = batch(
        reading("temp", 21.5, unit="degC"),
        reading("running", True),
        reading("mode", 'auto "2"', offset_s=1),
    )
    origin = [(HEADER_MQTT_TOPIC, b"some/topic")]
    async with writer_running(Writer(config)) as writer:
        await produce(kafka_bootstrap, config.topics.telemetry_raw, [(KEY, encode(good), origin)])

        async def stored() -> bool:
            return writer.stats.commits >= 1

        await async_wait_for(stored, 20, "the batch to be committed")
        assert writer.stats.batches == 1
        assert writer.stats.written_points == 3

    rows = {row["signal"]: row for row in await points(influx_url, database)}
    assert set(rows) == {"temp", "running", "mode"}
    temp = rows["temp"]
    assert temp["time"] == timestamp_ns(T0)
    assert temp["value"] == 21.5
    assert temp["unit"] == "degC"
    assert (temp["plant"], temp["area"], temp["line"], temp["machine"]) == (
        "p1",
        "press",
        "l2",
        "m7",
    )
    assert temp["status_code"] == 0
    assert temp["quality"] == "good"
    assert rows["running"]["value"] == 1.0
    assert rows["mode"]["value_str"] == 'auto "2"'
    assert rows["mode"]["value"] is None
    assert rows["mode"]["time"] == timestamp_ns(T0 + timedelta(seconds=1))

    [normalized] = await consume(kafka_bootstrap, config.topics.telemetry_normalized, 1)
    assert normalized.key == b"p1/gw-1"  # re-keyed by gateway (co-partitioned with status)
    assert decode(ReadingBatch, normalized.value) == good
    assert headers_of(normalized)[HEADER_MQTT_TOPIC] == b"some/topic"
    assert sum((await committed(kafka_bootstrap, config.writer.group_id)).values()) == 1


async def test_offsets_are_committed_only_after_influxdb_took_the_points(
    config: IngestConfig, database: str, kafka_bootstrap: str, influx_url: str
) -> None:
    # No database and no CREATE DATABASE: every write fails (404) until the test creates it.
    config = config.model_copy(
        update={"writer": config.writer.model_copy(update={"create_database": False})}
    )
    raw = config.topics.telemetry_raw
    first = batch(reading("temp", 1.0), seq=1)
    second = batch(reading("temp", 2.0, offset_s=1), seq=2)
    async with writer_running(Writer(config)) as writer:
        await produce(kafka_bootstrap, raw, [(KEY, encode(first), [])])

        async def failing_since(count: int) -> bool:
            return writer.stats.influx_failures >= count

        await async_wait_for(lambda: failing_since(1), 20, "a failed InfluxDB write")
        await produce(kafka_bootstrap, raw, [(KEY, encode(second), [])])
        retried = writer.stats.influx_failures
        await async_wait_for(lambda: failing_since(retried + 2), 20, "more retries")

        # Still on the first batch: nothing committed; the next poll is checked and waits.
        assert writer.stats.commits == 0
        assert await committed(kafka_bootstrap, config.writer.group_id) == {}
        assert writer.stats.messages <= 2

        await influxql(influx_url, f'CREATE DATABASE "{database}"')

        async def both_stored() -> bool:
            return writer.stats.batches == 2 and writer.stats.commits >= 2

        await async_wait_for(both_stored, 20, "both batches to be committed")

    assert sum((await committed(kafka_bootstrap, config.writer.group_id)).values()) == 2
    assert sorted(row["value"] for row in await points(influx_url, database)) == [1.0, 2.0]


async def test_a_failing_influxdb_pauses_the_partitions_and_resumes_without_loss(
    config: IngestConfig, database: str, kafka_bootstrap: str, influx_url: str
) -> None:
    writer_settings = config.writer.model_copy(
        update={"create_database": False, "pause_after_s": 0.1}
    )
    config = config.model_copy(update={"writer": writer_settings})
    raw = config.topics.telemetry_raw
    async with writer_running(Writer(config)) as writer:
        await produce(kafka_bootstrap, raw, [(KEY, encode(batch(reading("temp", 0.0), seq=0)), [])])

        async def paused() -> bool:
            return writer.stats.pauses >= 1 and writer.stats.paused

        await async_wait_for(paused, 20, "the writer to pause its partitions")
        consumer = writer._consumer
        assert consumer.paused() == consumer.assignment() != set()
        later: list[tuple[bytes | None, bytes, list[Any]]] = [
            (KEY, encode(batch(reading("temp", float(i), offset_s=i), seq=i)), [])
            for i in range(1, 6)
        ]
        await produce(kafka_bootstrap, raw, later)
        failures = writer.stats.influx_failures

        async def retried() -> bool:
            return writer.stats.influx_failures >= failures + 3

        await async_wait_for(retried, 20, "more write attempts while paused")
        assert writer.stats.messages == 1  # nothing more fetched while paused

        await influxql(influx_url, f'CREATE DATABASE "{database}"')

        async def caught_up() -> bool:
            return sum(writer.stats.committed.values()) == 6

        await async_wait_for(caught_up, 20, "all six batches to be committed")
        assert consumer.paused() == set()
        assert not writer.stats.paused
    assert sorted(row["value"] for row in await points(influx_url, database)) == [
        0.0,
        1.0,
        2.0,
        3.0,
        4.0,
        5.0,
    ]


async def test_the_same_batch_twice_and_a_replay_leave_one_point_each(
    config: IngestConfig, database: str, kafka_bootstrap: str, influx_url: str
) -> None:
    same = batch(reading("temp", 5.0), reading("speed", 7.0), reading("temp", 6.0, offset_s=2))
    payload = encode(same)
    await produce(
        kafka_bootstrap, config.topics.telemetry_raw, [(KEY, payload, []), (KEY, payload, [])]
    )
    async with writer_running(Writer(config)) as writer:

        async def both() -> bool:
            return writer.stats.batches == 2

        await async_wait_for(both, 20, "both copies to be written")
        assert writer.stats.written_points == 6

    # A replay: another consumer group reads everything again.
    replay_config = config.model_copy(
        update={"writer": config.writer.model_copy(update={"group_id": "replay-" + database})}
    )
    async with writer_running(Writer(replay_config)) as replay:

        async def replayed() -> bool:
            return replay.stats.batches == 2

        await async_wait_for(replayed, 20, "the replay")

    rows = await points(influx_url, database)
    assert len(rows) == 3
    counts = await influxql(
        influx_url, "SELECT COUNT(value) FROM readings GROUP BY signal", database
    )
    per_signal = {s["tags"]["signal"]: s["values"][0][1] for s in counts["series"]}
    assert per_signal == {"temp": 2, "speed": 1}  # two timestamps for temp, one for speed


async def test_bad_messages_go_to_the_dlq_and_the_good_one_is_written(
    config: IngestConfig, database: str, kafka_bootstrap: str, influx_url: str
) -> None:
    raw = config.topics.telemetry_raw
    good = batch(reading("temp", 3.5))
    malformed = b'{"gateway_id": "gw-1", "readings": ['
    nan = encode(batch(reading("temp", 1.0, offset_s=9))).replace(b'"value":1.0', b'"value":NaN')
    assert b"NaN" in nan
    origin = [(HEADER_MQTT_TOPIC, b"the/mqtt/topic")]
    placed = await produce(
        kafka_bootstrap,
        raw,
        [(KEY, malformed, origin), (KEY, encode(good), origin), (KEY, nan, [])],
    )
    async with writer_running(Writer(config)) as writer:

        async def done() -> bool:
            return writer.stats.messages == 3 and writer.stats.commits >= 1

        await async_wait_for(done, 20, "the three messages to be handled")
        assert (writer.stats.batches, writer.stats.dlq) == (1, 2)
        assert writer.stats.dlq_by_reason == {"malformed_json": 1, "non_finite_value": 1}

    dlq = {
        headers_of(r)[HEADER_DLQ_REASON]: r
        for r in await consume(kafka_bootstrap, config.topics.telemetry_dlq, 2)
    }
    assert set(dlq) == {b"malformed_json", b"non_finite_value"}
    bad_json = dlq[b"malformed_json"]
    assert bad_json.value == malformed  # the original bytes
    assert bad_json.key == KEY
    assert headers_of(bad_json)[HEADER_MQTT_TOPIC] == b"the/mqtt/topic"
    (partition, offset), _, (nan_partition, nan_offset) = placed
    assert headers_of(bad_json)[HEADER_DLQ_SOURCE] == f"{raw}/{partition}/{offset}".encode()
    not_finite = dlq[b"non_finite_value"]
    assert not_finite.value == nan
    assert b"readings[0].value" in headers_of(not_finite)[HEADER_DLQ_DETAIL]
    assert b"finite" in headers_of(not_finite)[HEADER_DLQ_DETAIL]
    assert (
        headers_of(not_finite)[HEADER_DLQ_SOURCE] == f"{raw}/{nan_partition}/{nan_offset}".encode()
    )

    rows = await points(influx_url, database)
    assert [(row["signal"], row["value"]) for row in rows] == [("temp", 3.5)]
    [normalized] = await consume(kafka_bootstrap, config.topics.telemetry_normalized, 1)
    assert decode(ReadingBatch, normalized.value) == good
    assert sum((await committed(kafka_bootstrap, config.writer.group_id)).values()) == 3


async def test_points_influxdb_refuses_go_to_the_dlq_and_the_rest_is_written(
    config: IngestConfig, database: str, kafka_bootstrap: str, influx_url: str
) -> None:
    # A `value` field of type string in this shard makes InfluxDB refuse float values (400).
    await influxql(influx_url, f'CREATE DATABASE "{database}"')
    ts = timestamp_ns(T0 - timedelta(seconds=30))
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{influx_url}/write",
            params={"db": database},
            data=f'readings,plant=other value="text" {ts}',
            headers=influx_auth(),
        ) as response,
    ):
        assert response.status == 204
    refused = batch(reading("temp", 1.0), seq=1)
    accepted = batch(reading("mode", "auto"), seq=2)
    await produce(
        kafka_bootstrap,
        config.topics.telemetry_raw,
        [(KEY, encode(refused), []), (KEY, encode(accepted), [])],
    )
    async with writer_running(Writer(config)) as writer:

        async def done() -> bool:
            return writer.stats.messages == 2 and writer.stats.commits >= 1

        await async_wait_for(done, 20, "both messages to be handled")
        assert (writer.stats.batches, writer.stats.dlq) == (1, 1)
        assert writer.stats.dlq_by_reason == {"influx_rejected": 1}

    [dead] = await consume(kafka_bootstrap, config.topics.telemetry_dlq, 1)
    assert headers_of(dead)[HEADER_DLQ_REASON] == b"influx_rejected"
    assert b"400" in headers_of(dead)[HEADER_DLQ_DETAIL]
    assert dead.value == encode(refused)
    rows = await points(influx_url, database, "WHERE plant = 'p1'")
    assert [(row["signal"], row["value_str"]) for row in rows] == [("mode", "auto")]


async def test_writer_process_stops_cleanly_on_sigterm(
    config_data: dict[str, Any], database: str, tmp_path: Path
) -> None:
    config_file = tmp_path / "ingest.yaml"
    config_file.write_text(yaml.safe_dump(config_data))
    log_file = tmp_path / "writer.log"
    process = await start_writer_process(config_file, log_file)
    try:

        async def started() -> bool:
            return "writer starting" in log_file.read_text()

        await async_wait_for(started, 30, "the writer process to start")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0, log_file.read_text()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert "writer stopped" in log_file.read_text()


async def test_a_normalized_batch_kafka_refuses_goes_to_the_dlq_and_the_rest_flows(
    config: IngestConfig, database: str, kafka_bootstrap: str, influx_url: str
) -> None:
    # telemetry.normalized takes at most 4 kB a record batch here, telemetry.raw the default:
    # the big batch is stored in InfluxDB, but its normalized copy ends in the DLQ, and the
    # writer's producer (renewed after the refusal) forwards the next batch as usual.
    await create_small_topic(kafka_bootstrap, config.topics.telemetry_normalized, 4000)
    big = batch(*(reading(f"s{i}", float(i)) for i in range(40)), seq=1)
    small = batch(reading("temp", 20.0, offset_s=1), seq=2)
    raw = config.topics.telemetry_raw
    async with writer_running(Writer(config)) as writer:
        [(partition, offset), _] = await produce(
            kafka_bootstrap, raw, [(KEY, encode(big), []), (KEY, encode(small), [])]
        )
        [dead] = await consume(kafka_bootstrap, config.topics.telemetry_dlq, 1)
        [normalized] = await consume(kafka_bootstrap, config.topics.telemetry_normalized, 1)

        async def stored() -> bool:
            return writer.stats.written_points == 41 and writer.stats.dlq == 1

        await async_wait_for(stored, 20, "both batches written, one DLQ entry")
    assert writer.stats.dlq_by_reason == {"kafka_rejected": 1}
    assert writer.stats.produce_dropped == 0
    assert decode(ReadingBatch, dead.value) == big
    headers = headers_of(dead)
    assert headers[HEADER_DLQ_REASON] == b"kafka_rejected"
    assert headers[HEADER_DLQ_SOURCE] == f"{raw}/{partition}/{offset}".encode()
    assert decode(ReadingBatch, normalized.value) == small
    assert len(await points(influx_url, database)) == 41
