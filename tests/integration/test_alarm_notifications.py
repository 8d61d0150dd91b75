"""Notifications to real receivers on loopback (an HTTP server and an SMTP server in the test
process): exactly one delivery per expected notification, signed webhooks, Slack and Teams
payloads, retries with backoff, refusals that fail at once, and no second send after a
restart or with two workers. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.catalogue import load_catalogue
from alerting.lifecycle.machine import Action
from alerting.lifecycle.policies import EscalationConfig
from alerting.notify.http import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from alerting.notify.worker import PER_CONTACT, DeliveryWorker
from alerting.records.database import open_database
from alerting.records.queries import deliveries_of
from alerting.records.store import AlarmStore
from tests.support.alarms import Clock, alert_event
from tests.support.receivers import HttpReceiver, SmtpReceiver
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.integration

SECRET = "s3cret-for-tests"


@pytest.fixture
def config(http: HttpReceiver, smtp: SmtpReceiver) -> EscalationConfig:
    return EscalationConfig.model_validate(
        {
            "version": "test",
            "policies": [
                {
                    "name": "all",
                    "levels": [
                        {"roles": ["operator"], "ack_within_s": 60},
                        {"roles": ["maintenance"], "ack_within_s": 60},
                    ],
                }
            ],
            "contacts": [
                {
                    "plant": "plant-a",
                    "role": "operator",
                    "name": "ops-a",
                    "channels": [
                        {"type": "webhook", "url": f"{http.url}/hook", "secret": SECRET},
                        {"type": "email", "to": ["ops-a@example.com"]},
                    ],
                },
                {
                    "plant": "*",
                    "role": "maintenance",
                    "name": "maint",
                    "channels": [
                        {"type": "slack", "url": f"{http.url}/slack"},
                        {"type": "teams", "url": f"{http.url}/teams"},
                    ],
                },
            ],
            "smtp": {"host": "127.0.0.1", "port": smtp.port, "sender": "alarms@plant-a.example"},
            "console_url": "http://console.example:8600",
        }
    )


@pytest.fixture
def store(engine: AsyncEngine, clock: Clock, config: EscalationConfig) -> AlarmStore:
    return AlarmStore(engine, clock=clock, escalation=config)


@pytest.fixture
async def worker(
    engine: AsyncEngine, clock: Clock, config: EscalationConfig
) -> AsyncIterator[DeliveryWorker]:
    worker = DeliveryWorker(engine, config, load_catalogue(), clock=clock)
    yield worker
    await worker.close()


async def _drain(worker: DeliveryWorker) -> None:
    while await worker.run_once():
        pass


async def test_each_notification_arrives_once_with_what_to_do(
    store: AlarmStore,
    worker: DeliveryWorker,
    http: HttpReceiver,
    smtp: SmtpReceiver,
    clock: Clock,
) -> None:
    await store.record(alert_event("a1"))
    await _drain(worker)
    [hook] = http.answered("/hook")
    body = json.loads(hook.body)
    assert (body["kind"], body["alarm_id"], body["level"]) == ("raised", "a1", 1)
    assert body["issue_type"] == "vibration-instability"
    assert body["asset"] == "plant-a/milling/line1/mill-01"
    assert body["summary"] == "a1 raised"
    assert body["first_response"]  # from the catalogue
    assert body["link"] == "http://console.example:8600/alarms/a1"
    stamp = hook.headers[TIMESTAMP_HEADER]
    assert hook.headers[SIGNATURE_HEADER] == signature(SECRET.encode(), stamp, hook.body)
    # The delivery's id: a receiver drops a second copy of one notification by it.
    sent = {d.channel: d.id for d in await deliveries_of(store.engine, "a1")}
    assert hook.headers[DELIVERY_HEADER] == str(sent["webhook"])
    [mail] = smtp.messages
    assert mail["To"] == "ops-a@example.com"
    assert mail["Message-ID"] == f"<{sent['email']}.a1@plantmesh>"
    assert "vibration" in mail["Subject"].lower()
    assert "First response:" in mail.get_payload()

    clock.advance(60)
    await store.fire_due()
    await _drain(worker)
    [slack] = http.answered("/slack")
    assert "escalated to you" in json.loads(slack.body)["text"]
    [teams] = http.answered("/teams")
    card = json.loads(teams.body)["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["actions"][0]["url"] == "http://console.example:8600/alarms/a1"

    await store.act("a1", Action.RESOLVE, "user:maint")
    await _drain(worker)
    kinds = [json.loads(r.body)["kind"] for r in http.answered("/hook")]
    assert kinds == ["raised", "resolved"]
    assert len(http.answered("/slack")) == len(http.answered("/teams")) == 2
    assert len(smtp.messages) == 2
    assert "resolved" in smtp.messages[1]["Subject"]


async def test_a_receiver_that_is_down_gets_it_later_once(
    store: AlarmStore, worker: DeliveryWorker, http: HttpReceiver, clock: Clock
) -> None:
    http.statuses = [503, 503]
    await store.record(alert_event("a1"))
    await worker.run_once()
    assert http.answered("/hook") == []
    for _ in range(3):
        clock.advance(10)
        await worker.run_once()
    assert len(http.answered("/hook")) == 1
    [hook] = [d for d in await deliveries_of(store.engine, "a1") if d.channel == "webhook"]
    assert (hook.status, hook.attempts) == ("sent", 3)


async def test_a_refusal_fails_at_once_and_says_why(
    store: AlarmStore, worker: DeliveryWorker, http: HttpReceiver
) -> None:
    http.statuses = [404]
    await store.record(alert_event("a1"))
    await worker.run_once()
    [hook] = [d for d in await deliveries_of(store.engine, "a1") if d.channel == "webhook"]
    assert hook.status == "failed"
    assert "HTTP 404" in hook.last_error
    assert worker.failed == 1


async def test_a_restarted_or_second_worker_sends_nothing_twice(
    database_url: str,
    store: AlarmStore,
    worker: DeliveryWorker,
    config: EscalationConfig,
    http: HttpReceiver,
    clock: Clock,
) -> None:
    for n in range(15):
        await store.record(alert_event(f"a{n}", machine=f"mill-{n:02d}"))
    other_engine = open_database(database_url)
    other = DeliveryWorker(other_engine, config, load_catalogue(), clock=clock)
    try:
        await asyncio.gather(_drain(worker), _drain(other))
        clock.advance(3600)  # past every lease: a restarted worker would see leftovers now
        await asyncio.gather(_drain(worker), _drain(other))
    finally:
        await other.close()
        await other_engine.dispose()
    ids = sorted(json.loads(r.body)["alarm_id"] for r in http.answered("/hook"))
    assert ids == sorted(f"a{n}" for n in range(15))


async def test_a_receiver_that_hangs_holds_up_only_its_own_deliveries(
    engine: AsyncEngine, clock: Clock, http: HttpReceiver
) -> None:
    """Ten notifications to a contact whose receiver hangs are due before one to another
    contact: that one still arrives while the ten wait, and the hanging receiver never holds
    more than PER_CONTACT of the worker's slots."""
    hook = {"plant": "*", "role": "operator"}
    config = EscalationConfig.model_validate(
        {
            "version": "test",
            "policies": [{"name": "all", "levels": [{"roles": ["operator"], "ack_within_s": 60}]}],
            "contacts": [
                {**hook, "plant": "plant-a", "name": "slow",
                 "channels": [{"type": "webhook", "url": f"{http.url}/slow"}]},
                {**hook, "plant": "plant-b", "name": "fast",
                 "channels": [{"type": "webhook", "url": f"{http.url}/fast"}]},
            ],
        }
    )  # fmt: skip
    store = AlarmStore(engine, clock=clock, escalation=config)
    release = http.hold["/slow"] = threading.Event()
    worker = DeliveryWorker(engine, config, load_catalogue(), clock=clock)
    try:
        for n in range(10):
            await store.record(alert_event(f"a{n}", machine=f"mill-{n:02d}"))
        await store.record(alert_event("b0", plant="plant-b"))

        async def fast_arrived_while_slow_hangs() -> bool:
            await worker.dispatch()
            return bool(http.answered("/fast")) and http.held.get("/slow") == PER_CONTACT

        await async_wait_for(fast_arrived_while_slow_hangs, 10, "the other contact's notification")
        for _ in range(3):
            await worker.dispatch()  # the hanging contact gets no more
        assert http.answered("/slow") == []
    finally:
        release.set()
        await worker.run_once()
        await worker.close()
    ids = sorted(json.loads(r.body)["alarm_id"] for r in http.answered("/slow"))
    assert ids == sorted(f"a{n}" for n in range(10))  # each exactly once, none lost
    assert http.most_held["/slow"] == PER_CONTACT
    assert len(http.answered("/fast")) == 1
