"""Identity checks without servers: who may publish on a topic (the gateway registry), the
headers the bridge adds, and the writer's verdict on a payload that claims another gateway or
plant — the same from the clean tier and the contract's tiers."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ingest.bridge.routing import Router
from ingest.checks.checker import Checked, Checker, Limits
from ingest.checks.identity import Origins
from ingest.config import BridgeSettings
from plantmesh.dead_letters import Rejection, RejectionLog
from plantmesh.identities import IdentityError, Publishers
from plantmesh.topics import (
    HEADER_DLQ_REASON,
    HEADER_MQTT_PUBLISHERS,
    HEADER_MQTT_TOPIC,
    Topics,
)

NOW = datetime.now(UTC).replace(microsecond=0)
TOPICS = Topics("ns")
A_TOPIC = "ns/plantmesh/v1/plant-a/press/l1/press-1/readings"


def registry(path: Path, *gateways: tuple[str, str, str]) -> Path:
    entries = [{"name": n, "plant": p, "namespace": ns} for n, p, ns in gateways]
    path.write_text(json.dumps({"gateways": entries}))
    return path


def payload(gateway: str = "gw-a", *plants: str) -> bytes:
    stamp = NOW.isoformat()
    readings: list[dict[str, Any]] = [
        {
            "asset": {"plant": plant, "area": "press", "line": "l1", "machine": "press-1"},
            "signal": "temp",
            "value": 1.5,
            "source_ts": stamp,
            "gateway_ts": stamp,
        }
        for plant in plants or ("plant-a",)
    ]
    body = {"gateway_id": gateway, "session_id": "s", "seq": 1, "sent_at": stamp}
    return json.dumps({**body, "readings": readings}).encode()


def headers(topic: str = A_TOPIC, publishers: str | None = "gw-a,gw-a2") -> list[Any]:
    found = [(HEADER_MQTT_TOPIC, topic.encode())]
    if publishers is not None:
        found.append((HEADER_MQTT_PUBLISHERS, publishers.encode()))
    return found


def test_publishers_are_the_registry_gateways_of_the_topics_plant(tmp_path: Path) -> None:
    path = registry(
        tmp_path / "gateways.json",
        ("gw-a", "plant-a", "ns"),
        ("gw-a2", "plant-a", "ns"),
        ("gw-b", "plant-b", "ns"),
        ("gw-other", "plant-a", "other-ns"),
    )
    publishers = Publishers(path, TOPICS)
    assert publishers.of_topic(A_TOPIC) == {"gw-a", "gw-a2"}
    assert publishers.of_topic("ns/plantmesh/v1/plant-c/x/y/z/readings") == set()
    # A status topic names its gateway: only that one, and only under its own plant.
    assert publishers.of_topic("ns/plantmesh/v1/plant-a/_gateway/gw-a/status") == {"gw-a"}
    assert publishers.of_topic("ns/plantmesh/v1/plant-b/_gateway/gw-a/status") == set()
    assert publishers.of_topic("plantmesh/v1/plant-a/press/l1/press-1/readings") == set()

    registry(path, ("gw-a", "plant-a", "ns"), ("gw-c", "plant-c", "ns"))
    before = publishers.generation
    publishers.refresh(force=True)
    assert publishers.generation == before + 1
    assert publishers.of_topic("ns/plantmesh/v1/plant-c/x/y/z/readings") == {"gw-c"}


def test_a_missing_registry_allows_nobody_and_a_broken_one_is_an_error(tmp_path: Path) -> None:
    assert Publishers(tmp_path / "absent.json", TOPICS).of_topic(A_TOPIC) == set()
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(IdentityError, match=r"broken\.json"):
        Publishers(broken, TOPICS)


def test_origins_come_from_the_bridges_headers_and_are_cached() -> None:
    origins = Origins(TOPICS)
    assert origins.of(None) is None
    assert origins.of([("other", b"x")]) is None  # written to Kafka directly: not from MQTT
    origin = origins.of(headers())
    assert origin is not None
    assert (origin.plant, origin.publishers) == ("plant-a", {"gw-a", "gw-a2"})
    assert origins.of(headers()) is origin
    no_registry = origins.of(headers(publishers=None))
    assert no_registry is not None
    assert no_registry.publishers is None
    nobody = origins.of(headers(publishers=""))
    assert nobody is not None
    assert nobody.publishers == frozenset()


@pytest.mark.parametrize("odd", [False, True], ids=["clean tier", "contract tiers"])
@pytest.mark.parametrize(
    ("body", "publishers", "verdict"),
    [
        (payload("gw-a"), "gw-a,gw-a2", None),
        (payload("gw-a2"), "gw-a,gw-a2", None),  # the ACL cannot tell a plant's gateways apart
        (payload("gw-a"), None, None),  # no registry: the plant is still checked
        (payload("gw-b"), "gw-a,gw-a2", "gateway_id 'gw-b' did not publish"),
        (payload("gw-a"), "", "the gateways allowed there are none"),
        (payload("gw-a", "plant-b"), "gw-a", "a reading of plant 'plant-b'"),
        (payload("gw-a", "plant-a", "plant-b"), None, "a reading of plant 'plant-b'"),
    ],
)
def test_a_payload_that_claims_another_gateway_or_plant_is_refused(
    body: bytes, publishers: str | None, verdict: str | None, odd: bool
) -> None:
    checker = Checker(Limits(), clean=not odd)  # off: the contract's tiers decide alone
    origin = Origins(TOPICS).of(headers(publishers=publishers))
    result = checker.check(body, NOW, origin=origin)
    if verdict is None:
        assert isinstance(result, Checked), result
        return
    assert isinstance(result, Rejection)
    assert result.reason == "identity_mismatch"
    assert verdict in result.detail


def test_the_bridge_sends_who_may_publish_and_refuses_an_unregistered_status(
    tmp_path: Path,
) -> None:
    path = registry(tmp_path / "gateways.json", ("gw-a", "plant-a", "ns"))
    settings = BridgeSettings(gateways=path)
    router = Router(TOPICS, settings, RejectionLog(logging.getLogger(__name__)))
    out = router.outgoing(A_TOPIC, payload("gw-a"), NOW.isoformat())
    assert dict(out.headers)[HEADER_MQTT_PUBLISHERS] == b"gw-a"
    assert dict(out.headers)[HEADER_MQTT_TOPIC] == A_TOPIC.encode()

    status = {"gateway_id": "gw-x", "plant": "plant-a", "session_id": "s", "state": "birth"}
    body = json.dumps({**status, "at": NOW.isoformat()}).encode()
    refused = router.outgoing("ns/plantmesh/v1/plant-a/_gateway/gw-x/status", body, "t")
    assert dict(refused.headers)[HEADER_DLQ_REASON] == b"identity_mismatch"
    lying = json.dumps({**status, "gateway_id": "gw-b", "at": NOW.isoformat()}).encode()
    topic = "ns/plantmesh/v1/plant-a/_gateway/gw-a/status"
    assert dict(router.outgoing(topic, lying, "t").headers)[HEADER_DLQ_REASON] == (
        b"identity_mismatch"
    )
    ok = json.dumps({**status, "gateway_id": "gw-a", "at": NOW.isoformat()}).encode()
    assert HEADER_DLQ_REASON not in dict(router.outgoing(topic, ok, "t").headers)

    # Without a registry: no publishers header, statuses checked against their topic only.
    plain = Router(TOPICS, BridgeSettings(), RejectionLog(logging.getLogger(__name__)))
    assert HEADER_MQTT_PUBLISHERS not in dict(plain.outgoing(A_TOPIC, payload(), "t").headers)
