"""The real servers behave as the pipeline relies on: one round trip through each."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from paho.mqtt.enums import CallbackAPIVersion

from plantmesh.connections import InfluxConnection, KafkaConnection
from plantmesh.kafka.admin import ensure_topics
from plantmesh.mqtt_auth import apply_connection, connect_args
from tests.support.kafka import kafka_options
from tests.support.servers import influx_query
from tests.support.waiting import async_wait_for, wait_for

pytestmark = pytest.mark.integration


def _mqtt_client(url: str, client_id: str) -> mqtt.Client:
    conn, host, port = connect_args(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    apply_connection(client, conn)
    client.connect(host, port, keepalive=10)
    client.loop_start()
    return client


def test_mqtt_qos1_publish_subscribe_round_trip(mqtt_url: str, namespace: str) -> None:
    topic = f"{namespace}/plant-a/m1/readings"
    received: list[mqtt.MQTTMessage] = []
    subscribed = threading.Event()
    subscriber = _mqtt_client(mqtt_url, f"{namespace}-sub")
    subscriber.on_message = lambda _c, _u, message: received.append(message)
    subscriber.on_subscribe = lambda *_: subscribed.set()
    publisher = _mqtt_client(mqtt_url, f"{namespace}-pub")
    try:
        subscriber.subscribe(topic, qos=1)
        wait_for(subscribed.is_set, 10, "SUBACK from the broker")
        info = publisher.publish(topic, b'{"seq": 1}', qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published(), "no PUBACK for a QoS 1 publish"
        wait_for(lambda: received, 10, "the message at the subscriber")
    finally:
        for client in (publisher, subscriber):
            client.disconnect()
            client.loop_stop()
    assert [(m.topic, m.payload, m.qos) for m in received] == [(topic, b'{"seq": 1}', 1)]


async def test_kafka_idempotent_produce_then_consume(kafka_bootstrap: str, namespace: str) -> None:
    topic = f"{namespace}.telemetry.raw"
    values = [f"reading-{i}".encode() for i in range(5)]
    # No auto-creation on the secured stack: topics are made on purpose, as services do.
    await ensure_topics(KafkaConnection(bootstrap=kafka_bootstrap), [topic], 4, 1)
    producer = AIOKafkaProducer(
        **kafka_options(kafka_bootstrap), enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        sent = [await producer.send_and_wait(topic, v, key=b"plant-a/m1") for v in values]
    finally:
        await producer.stop()
    # One key, one partition, consecutive offsets: the ordering the pipeline relies on.
    assert len({m.partition for m in sent}) == 1
    assert [m.offset for m in sent] == list(range(sent[0].offset, sent[0].offset + 5))

    consumer = AIOKafkaConsumer(
        topic,
        **kafka_options(kafka_bootstrap),
        group_id=f"{namespace}-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[bytes] = []
    try:

        async def all_consumed() -> bool:
            batches = await consumer.getmany(timeout_ms=500)
            got.extend(r.value for records in batches.values() for r in records)
            return len(got) >= len(values)

        await async_wait_for(all_consumed, 30, "the 5 records back from Kafka")
    finally:
        await consumer.stop()
    assert got == values


def test_influx_v2_write_then_flux_and_influxql_read(influx_url: str, influx_database: str) -> None:
    bucket = f"{influx_database}/autogen"
    at_ns = 1_700_000_000_000_000_000
    lines = [
        f"readings,plant=plant-a,machine=m1,signal=temp value=21.5 {at_ns}",
        f"readings,plant=plant-a,machine=m2,signal=temp value=23.25 {at_ns}",
    ]
    token = InfluxConnection(url=influx_url).token_value()  # the session's (stack's admin)
    with InfluxDBClient(url=influx_url, token=token, org="-") as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            bucket=bucket, record=lines, write_precision=WritePrecision.NS
        )
        tables = client.query_api().query(
            f'from(bucket: "{bucket}") |> range(start: 0)'
            ' |> filter(fn: (r) => r._measurement == "readings" and r._field == "value")'
        )
    flux = sorted((r.values["machine"], r.get_value()) for t in tables for r in t.records)
    assert flux == [("m1", 21.5), ("m2", 23.25)]

    answer = influx_query(
        influx_url, 'SELECT "value" FROM "readings" GROUP BY "machine"', db=influx_database
    )
    series = answer["results"][0]["series"]
    influxql = sorted((s["tags"]["machine"], s["values"][0][1]) for s in series)
    assert influxql == [("m1", 21.5), ("m2", 23.25)]
