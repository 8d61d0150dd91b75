"""Scale-out on the real local servers: two of every central service, one of each killed with
SIGKILL in the middle of a steady load, and nothing lost, doubled or left behind.

Four gateways x six machines publish one batch a machine a second of event time (4 ticks a
second of wall time) to a namespace whose Kafka topics have six partitions. Two bridges share one
MQTT subscription, two writers, two alerting processes and two alarm services are members of
their consumer groups. Mosquitto keeps queueing a share of the subscription for a bridge that
died (its session outlives it), so the killed bridge is started again with the same client id,
as systemd or Kubernetes would; the other killed services are not: their partitions must move to
the survivors. The test records how long each group took to give the survivor every partition.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest.ledger.state import GatewayLedger, SeqRecord
from plantmesh.children import Child, Children
from plantmesh.contracts import AlertEvent, is_transition
from plantmesh.influxql import query
from plantmesh.topics import Topics
from tests.support.alarm_service import write_config
from tests.support.ingest import forget_session
from tests.support.kafka import group_lag, records_on
from tests.support.receivers import HttpReceiver, SmtpReceiver
from tests.support.scale_out import SteadyLoad, group_members
from tests.support.waiting import async_wait_for, now

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PARTITIONS = 6
GATEWAYS, MACHINES, TICKS = 4, 6, 210
KILL_AT_TICK = 60
ACK_WITHIN_S = 3.0


def _configs(tmp_path: Path, ns: str, urls: dict[str, str], db: str) -> dict[str, Path]:
    topics = {"partitions": PARTITIONS}
    backoff = {"initial_s": 0.1, "max_s": 1.0}
    files: dict[str, Any] = {}
    for name in ("a", "b"):
        files[f"ingest-{name}"] = {
            "namespace": ns,
            "mqtt": {"url": urls["mqtt"], "client_id": f"{ns}-bridge-{name}"},
            "kafka": {"bootstrap": urls["kafka"], "client_id": f"{ns}-{name}"},
            "kafka_topics": topics,
            "influxdb": {"url": urls["influx"], "bucket": f"{db}/autogen"},
            "bridge": {"shared_group": f"{ns}-bridges", "session_expiry_s": 600},
            "writer": {
                "group_id": f"{ns}-writer",
                "completeness": {"flush_interval_s": 0.5, "gap_alert_after_s": 600},
            },
            "backoff": backoff,
        }
    files["alerting"] = {
        "namespace": ns,
        "kafka": {"bootstrap": urls["kafka"]},
        "kafka_topics": topics,
        "group_id": f"{ns}-alerting",
        "checkpoint_interval_s": 1.0,
        "rules": [
            {"name": "hot", "type": "threshold", "signal": "temp", "issue_type":
             "bearing-overtemperature", "above": 90.0, "deadband": 5.0, "on_delay_s": 2.0,
             "severity": "high"},
        ],
    }  # fmt: skip
    paths = {}
    for name, content in files.items():
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(content))
    return paths


async def _rebalanced(bootstrap: str, group: str, topic: str, since: float) -> float:
    """Seconds from `since` until one member of `group` holds every partition of `topic`."""

    async def one_holds_all() -> bool:
        members = await group_members(bootstrap, group)
        return any({p for t, p in held if t == topic} == set(range(PARTITIONS))
                   for held in members.values())  # fmt: skip

    await async_wait_for(one_holds_all, 90, f"{group}: the survivor to hold every partition")
    return time.monotonic() - since


async def _split(bootstrap: str, group: str, topic: str) -> bool:
    members = await group_members(bootstrap, group)
    shares = [{p for t, p in held if t == topic} for held in members.values()]
    return len(shares) == 2 and all(shares) and set().union(*shares) == set(range(PARTITIONS))


def _stored(influx_url: str, db: str) -> int:
    series = query(influx_url, db, "SELECT COUNT(value) FROM readings")
    return int(series[0].values[0][1]) if series else 0


def _ledger(influx_url: str, db: str) -> dict[str, dict[str, Any]]:
    found = query(influx_url, db, "SELECT LAST(*) FROM completeness GROUP BY gateway")
    return {s.tags["gateway"]: dict(zip(s.columns, s.values[0], strict=True)) for s in found}


async def _alert_events(bootstrap: str, topic: str) -> list[AlertEvent]:
    """The detection's events on `topic` (the alarm service's transitions skipped by header)."""
    records = await records_on(bootstrap, topic)
    return [
        AlertEvent.model_validate_json(r.value or b"")
        for r in records
        if not is_transition(r.headers)
    ]


def _deliveries(http: HttpReceiver, path: str) -> dict[tuple[str, str], set[str]]:
    """(alarm, kind) -> the delivery ids that arrived (a resend repeats its id)."""
    told: dict[tuple[str, str], set[str]] = defaultdict(set)
    for request in http.answered(path):
        body = json.loads(request.body)
        told[(body["alarm_id"], body["kind"])].add(request.headers["X-Plantmesh-Delivery"])
    return told


class Site:
    """Two of every central service, each its own process from its own YAML file."""

    def __init__(self, tmp_path: Path, namespace: str, urls: dict[str, str], alarms: Path) -> None:
        self.urls = urls
        self.configs = _configs(tmp_path, namespace, urls, urls["db"])
        self.alarms = alarms
        topics = Topics(namespace)
        self.groups = {
            "writer": (f"{namespace}-writer", topics.telemetry_raw),
            "alerting": (f"{namespace}-alerting", topics.telemetry_normalized),
            "alarms": (f"{namespace}-alarms", topics.alert_events),
        }
        self.services = Children(log_dir=tmp_path / "logs")
        self.doomed: dict[str, Child] = {}
        """The second of each: killed in the middle of the load."""

    def start(self) -> None:
        start = self.services.start_module
        for name in ("a", "b"):
            ingest = str(self.configs[f"ingest-{name}"])
            alerting = str(self.configs["alerting"])
            self.doomed |= {
                "writer": start(f"writer-{name}", "ingest", "writer", "--config", ingest),
                "alerting": start(f"alerting-{name}", "alerting", "run", "--config", alerting),
                "alarms": start(
                    f"alarms-{name}", "alerting", "alarms", "--config", str(self.alarms)
                ),
                "bridge": start(f"bridge-{name}", "ingest", "bridge", "--config", ingest),
            }

    def logs(self) -> str:
        return "\n".join(f"--- {c.name}\n{c.log_tail(12)}" for c in self.services.started)

    async def ready(self) -> bool:
        assert not self.services.dead(), f"a service died:\n{self.logs()}"
        bridges = [c for c in self.services.started if c.name.startswith("bridge")]
        return all("MQTT subscribed" in c.log_tail(400) for c in bridges) and all(
            [await _split(self.urls["kafka"], g, t) for g, t in self.groups.values()]
        )

    async def kill_one_of_each(self) -> dict[str, float]:
        """SIGKILL the second of each service; seconds until each group's survivor holds every
        partition. The bridge is started again (its MQTT session holds its share)."""
        killed_at = time.monotonic()
        for child in self.doomed.values():
            child.process.kill()  # no shutdown of any kind
        for child in self.doomed.values():
            await asyncio.to_thread(child.process.wait, 30)
            self.services.started.remove(child)  # not stopped again at the end
        rebalance = {
            name: await _rebalanced(self.urls["kafka"], group, topic, killed_at)
            for name, (group, topic) in self.groups.items()
        }
        ingest = str(self.configs["ingest-b"])
        self.services.start_module("bridge-b", "ingest", "bridge", "--config", ingest)
        return rebalance

    async def caught_up(self) -> None:
        for name, (group, topic) in self.groups.items():

            async def no_lag(g: str = group, t: str = topic) -> bool:
                return await group_lag(self.urls["kafka"], g, t) == 0

            await async_wait_for(no_lag, 60, f"{name}: lag back to zero")


async def test_two_of_each_service_survive_losing_one_of_each_mid_load(
    tmp_path: Path,
    namespace: str,
    mqtt_url: str,
    kafka_bootstrap: str,
    influx_url: str,
    influx_database: str,
    postgres_database: str,
    http: HttpReceiver,
    smtp: SmtpReceiver,
    record_property: Callable[[str, object], None],
) -> None:
    urls = {"mqtt": mqtt_url, "kafka": kafka_bootstrap, "influx": influx_url, "db": influx_database}
    alarms = write_config(
        tmp_path, namespace=namespace, kafka=kafka_bootstrap, database=postgres_database,
        http=http, smtp=smtp, ack_within_s=ACK_WITHIN_S,
        extra={"api": {"enabled": False}, "kafka_topics": {"partitions": PARTITIONS},
               "group_id": f"{namespace}-alarms"},
    )  # fmt: skip
    site = Site(tmp_path, namespace, urls, alarms)
    # Each machine hot for 25 s of wall time, a new one every second: alarms raised before and
    # after the kill are still active when level 1's time to acknowledge runs out, even behind a
    # rebalance (an alarm back to normal is not escalated).
    load = SteadyLoad(
        mqtt_url, namespace, GATEWAYS, MACHINES, TICKS, tick_s=0.25, hot_every=4, hot_ticks=100
    )
    try:
        site.start()
        await async_wait_for(site.ready, 120, "every group split between its two members")
        load.start_publishing()
        await async_wait_for(
            lambda: now(load.published_ticks >= KILL_AT_TICK or load.error), 120, "steady load"
        )
        rebalance = await site.kill_one_of_each()
        record_property("rebalance_s", rebalance)
        print(f"rebalance after SIGKILL (s): {rebalance}")

        await async_wait_for(lambda: now(load.done or load.error), 180, "the whole load sent")
        assert load.error is None, load.error
        await async_wait_for(
            lambda: now(_stored(influx_url, influx_database) >= load.readings), 180, "all stored"
        )
        await site.caught_up()
        await _wait_for_escalations(http, site)
        try:
            await async_wait_for(
                lambda: now(_ledger_complete(influx_url, influx_database, load)), 60, "ledger"
            )
        except AssertionError as exc:
            where = await _where_missing(kafka_bootstrap, namespace, load)
            raise AssertionError(f"{exc}: {_ledger(influx_url, influx_database)}\n{where}\n"
                                 f"{site.logs()}") from None  # fmt: skip
        events = await _alert_events(kafka_bootstrap, Topics(namespace).alert_events)
        assert all(c.alive() for c in site.services.started), site.logs()
    finally:
        load.stop()
        codes = site.services.stop()
        for name in ("a", "b"):
            forget_session(mqtt_url, f"{namespace}-bridge-{name}")

    assert all(code == 0 for code in codes.values()), f"unclean exits {codes}"
    _check_stored(influx_url, influx_database, load)
    _check_alerts(events, http)


async def _wait_for_escalations(http: HttpReceiver, site: Site) -> None:
    def escalated() -> int:
        return sum(kind == "escalated" for _alarm, kind in _deliveries(http, "/maint"))

    try:
        await async_wait_for(
            lambda: now(escalated() >= GATEWAYS * MACHINES), 60, "every escalation"
        )
    except AssertionError as exc:
        told = {p: Counter(k for _a, k in _deliveries(http, p)) for p in ("/ops", "/maint")}
        raise AssertionError(f"{exc}: told {told}\n{site.logs()}") from None


async def _where_missing(bootstrap: str, namespace: str, load: SteadyLoad) -> str:
    """For a ledger that stays short: which sequence numbers telemetry.sequences lacks (the
    writers never told) and the gaps the ledger's last snapshots hold (it lost what it was told)."""
    topics = Topics(namespace)
    told: dict[str, set[int]] = defaultdict(set)
    for record in await records_on(bootstrap, topics.telemetry_sequences):
        seq = SeqRecord.from_bytes(record.value or b"")
        told[seq.gateway_id].add(seq.seq)
    lines = []
    for gateway, seqs in sorted(told.items()):
        absent = sorted(set(range(load.batches_per_gateway)) - seqs)
        lines.append(f"{gateway}: {len(absent)} never on the sequences topic {absent[:3]}..")
    for record in await records_on(bootstrap, topics.ingest_ledger):
        if record.value:
            snap = GatewayLedger.from_bytes(record.value)
            gaps = [(g.first, g.last) for s in snap.sessions.values() for g in s.gaps]
            lines.append(f"snapshot {snap.gateway_id} partition {snap.partition} offset "
                         f"{record.offset}: applied {snap.applied} gaps {gaps}")  # fmt: skip
    return "\n".join(lines[-40:])


def _ledger_complete(influx_url: str, db: str, load: SteadyLoad) -> bool:
    figures = _ledger(influx_url, db)
    return len(figures) == GATEWAYS and all(
        f["last_batches_received"] == load.batches_per_gateway for f in figures.values()
    )


def _check_stored(influx_url: str, db: str, load: SteadyLoad) -> None:
    assert _stored(influx_url, db) == load.readings  # every reading once
    per_series = query(influx_url, db, "SELECT COUNT(value) FROM readings GROUP BY *")
    assert len(per_series) == GATEWAYS * MACHINES * 5
    assert {int(s.values[0][1]) for s in per_series} == {TICKS}
    for gateway, figures in _ledger(influx_url, db).items():
        assert figures["last_batches_expected"] == load.batches_per_gateway, gateway
        assert figures["last_batches_missing"] == 0, gateway


def _check_alerts(events: list[AlertEvent], http: HttpReceiver) -> None:
    machines = GATEWAYS * MACHINES
    kinds = Counter((e.asset.machine, e.asset.plant, e.kind.value) for e in events)
    assert len(kinds) == machines * 2, kinds  # one raised and one cleared a machine
    assert set(kinds.values()) == {1}, "an alert raised or cleared twice"
    for path, kind in (("/ops", "raised"), ("/maint", "escalated")):
        told = _deliveries(http, path)
        assert len([k for k in told if k[1] == kind]) == machines, (path, told)
        assert all(len(ids) == 1 for ids in told.values()), f"{path}: a notification doubled"
