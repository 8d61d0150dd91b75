"""The demo's alarm story without servers: its webhook receiver checks signatures the way a real
receiver must, a timeline reads in order, and the verdict says what the default demo failed to
show."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from plantmesh.demo.alarm_report import timeline, verdict
from plantmesh.demo.hooks import HookReceiver, Received, signature_ok

SECRET = "s3cret"


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _signed(body: bytes, secret: str = SECRET, timestamp: str = "1700000000") -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "X-Plantmesh-Timestamp": timestamp,
        "X-Plantmesh-Signature": f"sha256={digest.hexdigest()}",
        "Content-Type": "application/json",
    }


def test_signature_covers_timestamp_and_body() -> None:
    body = b'{"kind":"raised"}'
    given = _signed(body)["X-Plantmesh-Signature"]
    assert signature_ok(SECRET.encode(), "1700000000", body, given)
    assert not signature_ok(SECRET.encode(), "1700000001", body, given)  # replayed later
    assert not signature_ok(SECRET.encode(), "1700000000", body + b" ", given)
    assert not signature_ok(b"other", "1700000000", body, given)
    assert not signature_ok(SECRET.encode(), None, body, given)


def test_receiver_hands_on_each_notification_with_its_contact_and_signature_check() -> None:
    arrived: list[Received] = []
    with HookReceiver(SECRET, arrived.append) as hooks:
        body = json.dumps({"kind": "raised", "alarm_id": "a1"}).encode()
        assert _post(f"{hooks.url}/operators", body, _signed(body)) == 204
        assert _post(f"{hooks.url}/line-maintenance", body, _signed(body, "wrong")) == 204
        assert _post(f"{hooks.url}/operators", b"not json", _signed(b"not json")) == 400
        assert _post(f"{hooks.url}/operators", b"[1]", _signed(b"[1]")) == 400
        assert hooks.received() == arrived
    assert [(r.contact, r.signed, r.payload["alarm_id"]) for r in arrived] == [
        ("operators", True, "a1"),
        ("line-maintenance", False, "a1"),
    ]


def _alarm(alarm_id: str, deliveries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": alarm_id,
        "plant": "p", "area": "a", "line": "l", "machine": "m",
        "raised_at": "2026-12-05T10:00:00Z",
        "timeline": [
            {"at": "2026-12-05T10:00:00.1Z", "action": "raise", "actor": "detection",
             "from_state": None, "to_state": "unack_active", "text": None},
            {"at": "2026-12-05T10:00:04Z", "action": "acknowledge", "actor": "pm-b",
             "from_state": "unack_active", "to_state": "ack_active", "text": "on my way"},
        ],
        "deliveries": deliveries,
    }  # fmt: skip


def _delivery(kind: str, level: int, sent: str) -> dict[str, Any]:
    return {"kind": kind, "level": level, "contact": f"c{level}", "channel": "webhook",
            "status": "sent", "created_at": sent, "sent_at": sent}  # fmt: skip


def test_timeline_merges_trail_and_deliveries_in_order_relative_to_raising() -> None:
    alarm = _alarm("a", [_delivery("raised", 1, "2026-12-05T10:00:00.5Z")])
    lines = timeline(alarm)
    assert [line.split("s", 1)[0].strip() for line in lines] == ["+0.1", "+0.5", "+4.0"]
    assert "acknowledge by pm-b -> ack_active (on my way)" in lines[2]
    assert "raised told to c1 level 1 by webhook: sent" in lines[1]


def _cleared_after(alarm: dict[str, Any], seconds: int) -> dict[str, Any]:
    clear = {"at": f"2026-12-05T10:00:{seconds:02d}Z", "action": "clear", "actor": "detection",
             "from_state": "ack_active", "to_state": "normal", "text": None}  # fmt: skip
    return {**alarm, "timeline": [*alarm["timeline"], clear]}


@pytest.mark.parametrize(
    ("escalated_unacked", "acked_escalates", "acked", "acked_clears_at", "expected"),
    [
        (True, False, True, 20, []),
        (True, False, True, None, []),
        (False, False, True, 20, ["no unacknowledged alarm escalated to level 2"]),
        (True, False, False, 20, ["no alarm of plant-b was acknowledged through the API"]),
        (True, True, True, 20, ["alarm b escalated although acknowledged"]),
        (True, False, True, 9, ["p/a/l/m cleared before its level 2 was due: the "
                                "acknowledgement stopped nothing"]),
    ],
)  # fmt: skip
def test_verdict_names_what_the_demo_did_not_show(
    escalated_unacked: bool,
    acked_escalates: bool,
    acked: bool,
    acked_clears_at: int | None,
    expected: list[str],
) -> None:
    first = _delivery("raised", 1, "2026-12-05T10:00:00.5Z")
    second = _delivery("escalated", 2, "2026-12-05T10:00:15.5Z")
    a = _alarm("a", [first, second] if escalated_unacked else [first])
    b = _alarm("b", [first, second] if acked_escalates else [first])
    if acked_clears_at is not None:
        b = _cleared_after(b, acked_clears_at)
    shown, problems = verdict([a, b], {"b"} if acked else set(), ack_within_s=15)
    assert problems == expected
    if not expected:
        assert [line.split(":")[0] for line in shown] == ["p/a/l/m", "p/a/l/m"]
        assert "level 2 was told" in shown[0]
        assert "nobody else was called" in shown[1]
