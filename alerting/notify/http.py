"""Webhooks: plain JSON signed with HMAC-SHA256, and Slack- and Teams-compatible payloads.

The signature covers the timestamp and the body (`X-Plantmesh-Signature: sha256=<hex of
HMAC(secret, "<timestamp>.<body>")>`, timestamp in `X-Plantmesh-Timestamp`), so a receiver can
check both who sent it and that it is not an old message played again."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx

from alerting.lifecycle.policies import ChatWebhook, Webhook
from alerting.notify.base import DeliveryError, Notification

SIGNATURE_HEADER = "X-Plantmesh-Signature"
TIMESTAMP_HEADER = "X-Plantmesh-Timestamp"
DELIVERY_HEADER = "X-Plantmesh-Delivery"
"""The same on every attempt of one notification: a receiver drops what it has seen (a send
can be repeated when the sender dies before recording it)."""


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class _Http:
    channel = "http"

    def __init__(self, timeout_s: float = 10.0) -> None:
        # Loopback and plant networks: never through a proxy from the environment.
        self._client = httpx.AsyncClient(timeout=timeout_s, trust_env=False)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        try:
            answer = await self._client.post(
                url, content=body, headers={"Content-Type": "application/json", **headers}
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"POST {url}: {exc!r}") from exc
        if answer.status_code >= 300:
            # A 4xx will not get better by retrying, except 408 and 429.
            retryable = answer.status_code >= 500 or answer.status_code in (408, 429)
            raise DeliveryError(f"POST {url}: HTTP {answer.status_code}", retryable)

    async def close(self) -> None:
        await self._client.aclose()


class WebhookNotifier(_Http):
    channel = "webhook"

    async def send(self, notification: Notification, target: Any) -> None:
        assert isinstance(target, Webhook)
        body = json.dumps(notification.as_json(), separators=(",", ":")).encode()
        headers = {DELIVERY_HEADER: notification.delivery} if notification.delivery else {}
        if target.secret is not None:
            timestamp = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = signature(
                target.secret.get_secret_value().encode(), timestamp, body
            )
        await self._post(target.url, body, headers)


def slack_payload(notification: Notification) -> dict[str, Any]:
    """Slack's incoming-webhook format (also what Mattermost and Rocket.Chat accept)."""
    return {
        "text": notification.subject,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": notification.subject[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": notification.text}},
        ],
    }


def teams_payload(notification: Notification) -> dict[str, Any]:
    """A Microsoft Teams message with an Adaptive Card (Workflows / incoming webhook)."""
    facts = [
        {"title": "Machine", "value": f"{notification.asset} ({notification.signal})"},
        {"title": "State", "value": notification.state},
        {"title": "Evidence", "value": notification.summary},
        {"title": "First response", "value": notification.first_response},
    ]
    card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": notification.subject, "weight": "Bolder", "wrap": True},
            {"type": "FactSet", "facts": facts},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Open alert", "url": notification.link}],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


class ChatNotifier(_Http):
    channel = "chat"

    async def send(self, notification: Notification, target: Any) -> None:
        assert isinstance(target, ChatWebhook)
        payload = (
            slack_payload(notification) if target.type == "slack" else teams_payload(notification)
        )
        await self._post(target.url, json.dumps(payload).encode(), {})
