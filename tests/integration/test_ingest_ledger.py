"""The completeness ledger against real Kafka and InfluxDB: a gap shows in the figures and as an
event, survives a writer restart, and closes when late data arrives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ingest.config import IngestConfig
from ingest.writer import Writer
from plantmesh.cli import main
from plantmesh.config import validate_config
from plantmesh.contracts import (
    AssetPath,
    CompletenessEvent,
    CompletenessEventKind,
    Reading,
    ReadingBatch,
    decode,
    encode,
)
from tests.support.ingest import influxql, produce, writer_running
from tests.support.kafka import consume
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


def batch(seq: int, machine: str) -> ReadingBatch:
    asset = AssetPath(plant="p1", area="a", line="l", machine=machine)
    ts = T0 + timedelta(seconds=seq)
    readings = [
        Reading(asset=asset, signal=s, value=float(seq), source_ts=ts, gateway_ts=ts)
        for s in ("temp", "speed")
    ]
    return ReadingBatch(
        gateway_id="gw-1", session_id="boot-1", seq=seq, sent_at=ts, readings=readings
    )


@pytest.fixture
def config(namespace: str, kafka_bootstrap: str, influx_url: str) -> IngestConfig:
    return validate_config(
        IngestConfig,
        {
            "namespace": namespace,
            "kafka": {"bootstrap": kafka_bootstrap, "client_id": namespace},
            "influxdb": {"url": influx_url, "bucket": f"{namespace}/autogen"},
            "writer": {
                "group_id": f"{namespace}-writer",
                "completeness": {"gap_alert_after_s": 0.5, "flush_interval_s": 0.2},
            },
            "backoff": {"initial_s": 0.05, "max_s": 0.2},
        },
    )


async def send(config: IngestConfig, seqs: list[int]) -> None:
    # Two machines of one gateway: their batches land on different partitions (key plant/machine).
    messages: list[tuple[bytes | None, bytes, list[Any]]] = []
    for seq in seqs:
        machine = f"m{seq % 2}"
        messages.append((f"p1/{machine}".encode(), encode(batch(seq, machine)), []))
    await produce(config.kafka.bootstrap, config.topics.telemetry_raw, messages)


async def latest_figures(config: IngestConfig) -> dict[str, Any] | None:
    result = await influxql(
        config.influxdb.url,
        "SELECT * FROM completeness WHERE gateway = 'gw-1' ORDER BY time DESC LIMIT 1",
        config.influxdb.database,
    )
    if not result.get("series"):
        return None
    series = result["series"][0]
    return dict(zip(series["columns"], series["values"][0], strict=True))


async def events(config: IngestConfig, count: int) -> list[CompletenessEvent]:
    records = await consume(config.kafka.bootstrap, config.topics.telemetry_completeness, count)
    assert all(r.key == b"p1/gw-1" for r in records)
    return [decode(CompletenessEvent, r.value) for r in records]


async def test_a_gap_is_counted_raised_survives_a_restart_and_closes_with_late_data(
    config: IngestConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    db = config.influxdb.database
    try:
        async with writer_running(Writer(config)):
            await send(config, [0, 1, 4, 5])

            async def gap_counted() -> bool:
                figures = await latest_figures(config)
                return figures is not None and figures["batches_expected"] == 6

            await async_wait_for(gap_counted, 30, "the gap in the completeness figures")
            [opened] = await events(config, 1)
            assert opened.kind is CompletenessEventKind.GAP_OPEN
            assert (opened.session_id, opened.first_seq, opened.last_seq) == ("boot-1", 2, 3)
            assert opened.missing_batches == 2
        figures = await latest_figures(config)
        assert figures is not None
        assert (figures["batches_received"], figures["batches_missing"]) == (4, 2)
        assert (figures["plant"], figures["open_gaps"]) == ("p1", 1)
        assert figures["readings_received"] == 8

        # A new writer process takes over: the ledger comes back from ingest.ledger, so the late
        # batches close the gap it raised instead of looking like a new session.
        async with writer_running(Writer(config)):
            await send(config, [3, 2])

            async def closed() -> bool:
                figures = await latest_figures(config)
                return figures is not None and figures["batches_missing"] == 0

            await async_wait_for(closed, 30, "the gap to close")
            opened_again, closing = await events(config, 2)
            assert opened_again == opened  # raised once
            assert closing.kind is CompletenessEventKind.GAP_CLOSED
            assert (closing.first_seq, closing.last_seq, closing.missing_batches) == (2, 3, 0)
        figures = await latest_figures(config)
        assert figures is not None
        assert (figures["batches_expected"], figures["batches_received"]) == (6, 6)
        assert (figures["duplicates"], figures["open_gaps"]) == (0, 0)

        # The same figures through `plantmesh query completeness`, in InfluxQL and in Flux.
        common = ["query", "--url", config.influxdb.url, "--db", db]
        assert main([*common, "completeness"]) == 0
        header, row, total = capsys.readouterr().out.splitlines()
        assert header.split() == [
            "plant",
            "gateway",
            "time",
            "expected",
            "received",
            "received_ratio",
            "missing",
            "duplicates",
            "open_gaps",
        ]
        assert row.split()[:2] == ["p1", "gw-1"]
        assert row.split()[3:] == ["6", "6", "1.0", "0", "0", "0"]
        assert total.split()[:2] == ["p1", "(all)"]
        assert main([*common, "--flux", "completeness", "--plant", "p1"]) == 0
        out = capsys.readouterr().out
        assert out.splitlines()[0] == header
        assert out.splitlines()[1].split()[3:] == ["6", "6", "1.0", "0", "0", "0"]
    finally:
        await influxql(config.influxdb.url, f'DROP DATABASE "{db}"')


async def test_two_writers_share_the_raw_partitions_yet_one_ledger_sees_every_batch(
    config: IngestConfig,
) -> None:
    # One gateway, four machines: its batches spread over the raw partitions, which the two
    # writers split between them. The ledger must still see all twenty sequence numbers.
    settings = config.writer.completeness.model_copy(update={"gap_alert_after_s": 600})
    config = config.model_copy(
        update={"writer": config.writer.model_copy(update={"completeness": settings})}
    )
    db = config.influxdb.database
    try:
        async with (
            writer_running(Writer(config)) as first,
            writer_running(Writer(config)) as second,
        ):

            async def split() -> bool:
                mine = first._consumer.assignment()
                theirs = second._consumer.assignment()
                return bool(mine) and bool(theirs) and not mine & theirs

            await async_wait_for(split, 60, "the two writers to split the raw partitions")
            messages: list[tuple[bytes | None, bytes, list[Any]]] = []
            for seq in range(20):
                machine = f"m{seq % 4}"
                messages.append((f"p1/{machine}".encode(), encode(batch(seq, machine)), []))
            await produce(config.kafka.bootstrap, config.topics.telemetry_raw, messages)

            async def complete() -> bool:
                figures = await latest_figures(config)
                return figures is not None and figures["batches_received"] == 20

            await async_wait_for(complete, 60, "all twenty batches in the ledger")
            assert first.stats.batches > 0
            assert second.stats.batches > 0
        figures = await latest_figures(config)
        assert figures is not None
        assert (figures["batches_expected"], figures["batches_missing"]) == (20, 0)
        assert (figures["duplicates"], figures["open_gaps"]) == (0, 0)
    finally:
        await influxql(config.influxdb.url, f'DROP DATABASE "{db}"')
