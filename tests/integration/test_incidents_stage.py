"""The network-incident stage against a real Kafka, in this process: member alerts of three plants
on alerts.events open one incident on incidents.events (alarm transitions, other issue types,
other classes, instrument problems and two machines of one plant do not), it survives a clean
restart, a second deployment starting at the latest offsets takes in nothing of the first, and
records that are not alert events are skipped. test_incidents_stage_group.py: several processes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaProducer

from plantmesh.contracts import (
    ALARM_TRANSITION_CONTRACT,
    CONTRACT_HEADER,
    INCIDENT_CONTRACT,
    IncidentChange,
)
from plantmesh.topics import Topics
from tests.support.incident_stage import (
    BEARINGS,
    MILLS,
    event,
    incident_updates,
    opened,
    plants_a_and_b,
    running,
    send,
    spans,
    wait_updates,
    write_config,
)
from tests.support.kafka import consume, read_all
from tests.support.waiting import async_wait_for, now

pytestmark = pytest.mark.integration


@pytest.fixture
def config(tmp_path: Path, namespace: str, kafka_bootstrap: str) -> Path:
    return write_config(tmp_path, namespace, kafka_bootstrap)


async def test_three_plants_make_one_incident_that_closes_and_decoys_make_none(
    config: Path, namespace: str, kafka_bootstrap: str, producer: AIOKafkaProducer
) -> None:
    async with running(config) as stage:
        transition = [(CONTRACT_HEADER, ALARM_TRANSITION_CONTRACT.encode())]
        # A valid raise in plant-c, but on the alarm service's record: with plant-a's two
        # machines it would open the incident if it were taken for an alert event.
        await send(producer, namespace, event("decoy-t", "plant-c/mill-03"), headers=transition)
        await send(
            producer,
            namespace,
            event("decoy-issue", "plant-c/mill-03", pattern=BEARINGS),
            event("decoy-class", "plant-c/press-01", pattern=("hydraulic_press", MILLS[1])),
            event("decoy-none", "plant-c/mill-02", pattern=(None, MILLS[1])),
            *(
                event(f"comms-{p}", f"plant-{p}/mill-01", pattern=("cnc_mill", "comms-loss"))
                for p in "abc"
            ),
            event("a1", "plant-a/mill-01"),
            event("a2", "plant-a/mill-02"),  # two machines of one plant: no incident yet
        )
        stats = stage.stats
        await async_wait_for(
            lambda: now(stats.correlated == 4 and stats.uncorrelated == 3),
            30,
            "the decoys and plant-a correlated",
        )
        assert (stats.transitions, stats.unclassed) == (1, 1)
        await send(producer, namespace, event("b1", "plant-b/mill-01"))
        await wait_updates(kafka_bootstrap, namespace, spans(2), "the incident opened")
        await send(producer, namespace, event("c1", "plant-c/mill-02"))
        await wait_updates(kafka_bootstrap, namespace, spans(3), "plant-c joined")
        clears = [("a1", "plant-a/mill-01"), ("a2", "plant-a/mill-02"), ("b1", "plant-b/mill-01")]
        await send(
            producer,
            namespace,
            *(event(a, w, "cleared") for a, w in [*clears, ("c1", "plant-c/mill-02")]),
        )
        await wait_updates(
            kafka_bootstrap,
            namespace,
            lambda us: any(u.change is IncidentChange.CLOSED for u in us),
            "the incident closed after its hold",
        )

    updates = await incident_updates(kafka_bootstrap, namespace)
    assert {u.incident_id for u in updates} == {updates[0].incident_id}
    for record in await consume(kafka_bootstrap, Topics(namespace).incident_events, len(updates)):
        assert record.key == updates[0].incident_id.encode()
        assert (CONTRACT_HEADER, INCIDENT_CONTRACT.encode()) in record.headers
    assert [u.version for u in updates] == list(range(1, len(updates) + 1))
    changes = [u.change.value for u in updates]
    assert changes == ["opened", "joined", *["member_cleared"] * 4, "closed"]
    [first] = opened(updates)
    assert first.member is not None
    assert (first.member.plant, first.member.machine) == ("plant-b", "mill-01")
    assert [m.alert_id for m in first.members] == ["a1", "a2", "b1"]
    assert (first.machine_class, first.issue_type) == MILLS
    last = updates[-1]
    assert last.plants == ["plant-a", "plant-b", "plant-c"]
    assert last.closed_at is not None
    assert last.explanation["common"] == {"firmware": "2.1"}  # from the registry
    assert last.explanation["distinguishing"] == ["firmware"]  # plant-c mill-03 has 2.3
    rekeyed = await read_all(kafka_bootstrap, Topics(namespace).alerts_by_class)
    classes = {"/".join(p).encode() for p in (MILLS, BEARINGS, ("hydraulic_press", MILLS[1]))}
    assert {k for k, _ in rekeyed} == classes


async def test_a_clean_restart_continues_the_incident(
    config: Path, namespace: str, kafka_bootstrap: str, producer: AIOKafkaProducer
) -> None:
    async with running(config):
        await send(producer, namespace, *plants_a_and_b())
        await wait_updates(kafka_bootstrap, namespace, spans(2), "the incident opened")
    async with running(config) as again:
        assert again.stats.restored >= 1
        await send(producer, namespace, event("c1", "plant-c/mill-02"))
        updates = await wait_updates(kafka_bootstrap, namespace, spans(3), "plant-c joined")
    assert [(u.change.value, u.version) for u in updates] == [("opened", 1), ("joined", 2)]
    assert updates[0].incident_id == updates[1].incident_id
    assert updates[1].new_plant


def second_deployment(config: Path, group_id: str) -> Path:
    fresh = yaml.safe_load(config.read_text())
    fresh.update(group_id=group_id, start_from="latest")
    second = config.with_name("second.yaml")
    second.write_text(yaml.safe_dump(fresh))
    return second


async def test_a_new_group_starting_latest_takes_in_nothing_an_earlier_group_left(
    config: Path, namespace: str, kafka_bootstrap: str, producer: AIOKafkaProducer
) -> None:
    """Two deployments on one Kafka (two demo runs): the second, `start_from: latest`, neither
    reopens the first one's incident from alerts.by_class nor counts its members."""
    async with running(config):
        await send(producer, namespace, *plants_a_and_b())
        await wait_updates(kafka_bootstrap, namespace, spans(2), "the first group's incident")
    async with running(second_deployment(config, f"{namespace}-second")):
        await send(
            producer, namespace, event("c1", "plant-c/mill-02"), event("d1", "plant-d/mill-01")
        )
        updates = await wait_updates(
            kafka_bootstrap, namespace, lambda u: len(u) >= 2, "a second incident"
        )
    members = {frozenset(m.alert_id for m in u.members) for u in opened(updates)}
    assert members == {frozenset({"a1", "b1"}), frozenset({"c1", "d1"})}  # none shared
    assert len(updates) == 2


async def test_records_that_are_not_alert_events_are_skipped(
    config: Path,
    namespace: str,
    kafka_bootstrap: str,
    producer: AIOKafkaProducer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="alerting.incidents")
    topics = Topics(namespace)
    async with running(config) as stage:
        key = b"plant-a/mill-01"
        await producer.send_and_wait(topics.alert_events, b"{not json", key=key)
        await producer.send_and_wait(topics.alert_events, b'{"alert_id": 7}', key=key)
        await producer.send_and_wait(topics.alerts_by_class, b"", key=b"cnc_mill/" + key)
        await send(producer, namespace, *plants_a_and_b())
        await wait_updates(kafka_bootstrap, namespace, spans(2), "the incident opened")
        await async_wait_for(
            lambda: now(sum(stage.stats.undecodable.values()) == 3), 10, "3 skipped"
        )
        assert stage.stats.undecodable == {"malformed_json": 2, "schema_mismatch": 1}
    assert "skipping a record that is not an alert event (malformed_json)" in caplog.text
    assert "skipping a record that is not an alert event (schema_mismatch)" in caplog.text
