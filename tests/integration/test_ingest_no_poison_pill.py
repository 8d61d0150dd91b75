"""No poison pill, as a property: hypothesis generates contract-valid and invalid batches (extreme
sequence numbers, lenient forms, free-text units, odd timestamps, non-finite values, garbage),
they all go through the real bridge and writer, and every message ends stored or dead-lettered
(each reading accounted for) while the writer's consumer lag returns to zero.

The examples are generated first and published in one run of the pipeline: starting a bridge
and a writer per example would take minutes."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.bridge import Bridge
from ingest.config import IngestConfig
from ingest.writer import Writer
from plantmesh.contracts import SEQ_MAX, AssetPath
from plantmesh.topics import HEADER_DLQ_READING_INDEX, Topics
from tests.support.ingest import (
    bridge_running,
    forget_session,
    influxql,
    pipeline_config,
    points,
    publish,
    writer_running,
)
from tests.support.kafka import consume, kafka_options, partitions_of
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

EXAMPLES = 120
NOW = datetime.now(UTC).replace(microsecond=0)
PRESS = AssetPath(plant="p1", area="a", line="l", machine="press-1")
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["5000", "7.0", "2026-01-01", "1767225600", "\x00", "\U0001f525"]),
    st.just({}),
    st.just([]),
)
GOOD_SEQS = st.one_of(st.integers(0, 1000), st.sampled_from([SEQ_MAX, SEQ_MAX - 1]))
BAD_SEQS = st.one_of(st.sampled_from([SEQ_MAX + 1, 2**63 - 1, 2**63, 2**64, -1]), ODD)
GOOD_UNITS = st.sampled_from([None, "degC", "bar", "%", "°C", "kWh"])
BAD_UNITS = st.one_of(st.sampled_from(["deg C", "x" * 5000, "\x00", "\U0001f525"]), ODD)
GOOD_TIMES = st.integers(-300, 300).map(
    lambda s: (NOW + timedelta(seconds=s)).isoformat().replace("+00:00", "Z")
)
BAD_TIMES = st.one_of(
    st.sampled_from(
        [
            NOW.isoformat().replace("+00:00", ".123456789Z"),
            NOW.replace(tzinfo=None).isoformat(),
            (NOW + timedelta(days=3)).isoformat(),
            "2026-13-01T00:00:00Z",
        ]
    ),
    ODD,
)
GOOD_VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**53), 2**53),
    st.booleans(),
    st.text(max_size=30),
)
BAD_VALUES = st.one_of(st.sampled_from([float("nan"), float("inf")]), st.just([]), st.none())
FIELDS = ["seq", "unit", "source_ts", "gateway_ts", "sent_at", "value", "status_code", "extra"]


@st.composite
def messages(draw: st.DrawFn, index: int) -> bytes:
    """Message `index`: contract-valid (extremes included) or with one field spoiled; its
    session id (or, for a non-batch, its first bytes) is `m<index>`, its signals `m<index>_<j>`."""
    if draw(st.integers(0, 19)) == 0:  # now and then no batch at all
        return f"m{index} {draw(st.text(max_size=50))}".encode()
    spoiled = draw(st.sampled_from([None, None, *FIELDS]))
    readings = []
    for j in range(draw(st.integers(1, 4))):
        spoil = spoiled is not None and draw(st.booleans())
        readings.append(
            {
                "asset": PRESS.model_dump(),
                "signal": f"m{index}_{j}",
                "value": draw(BAD_VALUES if spoil and spoiled == "value" else GOOD_VALUES),
                "unit": draw(BAD_UNITS if spoil and spoiled == "unit" else GOOD_UNITS),
                "source_ts": draw(BAD_TIMES if spoil and spoiled == "source_ts" else GOOD_TIMES),
                "gateway_ts": draw(BAD_TIMES if spoil and spoiled == "gateway_ts" else GOOD_TIMES),
                "status_code": draw(ODD if spoil and spoiled == "status_code" else st.just(0)),
            }
        )
    envelope: dict[str, Any] = {
        "gateway_id": "gw-1",
        "session_id": f"m{index}",
        "seq": draw(BAD_SEQS if spoiled == "seq" else GOOD_SEQS),
        "sent_at": draw(BAD_TIMES if spoiled == "sent_at" else GOOD_TIMES),
        "readings": readings,
    }
    if spoiled == "extra":
        envelope[draw(st.sampled_from(["schema_version", "extra"]))] = draw(ODD)
    return json.dumps(envelope, allow_nan=True).encode()


def generate() -> list[bytes]:
    found: list[bytes] = []

    @settings(
        max_examples=EXAMPLES,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def collect(data: st.DataObject) -> None:
        found.append(data.draw(messages(len(found))))

    collect()
    return found


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


MARKER = re.compile(rb'^m([0-9]+) |"session_id": ?"m([0-9]+)"')


def _index_of(value: bytes) -> int:
    """The message a DLQ entry belongs to: its session id, or the prefix of a non-batch."""
    found = MARKER.search(value)
    assert found is not None, value[:200]
    return int(found.group(1) or found.group(2))


async def test_every_generated_message_is_stored_or_dead_lettered_and_lag_returns_to_zero(
    config: IngestConfig, mqtt_url: str, influx_url: str
) -> None:
    bodies = generate()
    topics = Topics(config.namespace)
    press = topics.mqtt_readings(PRESS)
    async with writer_running(Writer(config)) as writer, bridge_running(Bridge(config)) as bridge:
        await publish(mqtt_url, [(press, body) for body in bodies])

        async def handled() -> bool:
            committed = sum(writer.stats.committed.values())
            passed = bridge.stats.forwarded + bridge.stats.dlq
            return passed == len(bodies) and committed == bridge.stats.forwarded

        await async_wait_for(handled, 90, "every message through the bridge and the writer")
        raw = await partitions_of(config.kafka.bootstrap, topics.telemetry_raw)
        ends = await _end_offsets(config.kafka.bootstrap, raw)
        committed = {tp: writer.stats.committed.get((tp.topic, tp.partition), 0) for tp in raw}
        assert committed == ends  # the writer's lag is zero

    dlq_count = writer.stats.dlq + bridge.stats.dlq
    dlq = await consume(config.kafka.bootstrap, topics.telemetry_dlq, dlq_count, timeout=60)
    whole: set[int] = set()
    bad_readings: Counter[int] = Counter()
    for record in dlq:
        index = _index_of(record.value)
        if dict(record.headers).get(HEADER_DLQ_READING_INDEX) is None:
            whole.add(index)
        else:
            bad_readings[index] += 1
    rows = await points(influx_url, config.influxdb.database) if writer.stats.written_points else []
    stored = Counter(int(row["signal"][1:].split("_")[0]) for row in rows)
    for index, body in enumerate(bodies):
        if index in whole:
            assert stored[index] == 0, body
            continue
        readings = len(json.loads(body)["readings"])  # not dead-lettered whole: a batch
        assert stored[index] + bad_readings[index] == readings, body


async def _end_offsets(
    bootstrap: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(**kafka_options(bootstrap), group_id=None)
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()
