"""What a notification says, and the protocol every channel implements.

A notification names the issue type, the machine, the evidence summary, the first response
from the catalogue and a link to the alert, so whoever gets it can act without opening
anything else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

HEADLINES = {
    "raised": "raised",
    "escalated": "escalated to you",
    "re_escalated": "acknowledged but not resolved: escalated to you",
    "shown": "shown again (was shelved or suppressed)",
    "re_alarmed": "still active: acknowledged too long ago",
    "resolved": "resolved",
    "updated": "updated",
}


@dataclass(frozen=True, slots=True)
class Notification:
    kind: str
    """raised, escalated, re_escalated, shown, re_alarmed, resolved"""
    alarm_id: str
    issue_type: str
    title: str
    """The catalogue's title of the issue type."""
    priority: str
    plant: str
    asset: str
    signal: str
    state: str
    summary: str
    """The evidence summary of the detection."""
    first_response: str
    link: str
    level: int | None
    contact: str
    raised_at: str
    delivery: str = ""
    """The delivery's id: the same on every attempt of one notification, so a receiver that
    gets it twice (sent, then the sender died before recording it) can drop the second."""

    @property
    def subject(self) -> str:
        what = HEADLINES.get(self.kind, self.kind)
        return f"[{self.priority.upper()}] {self.title} on {self.asset}: {what}"

    @property
    def text(self) -> str:
        level = f"Escalation level {self.level}\n" if self.level else ""
        return (
            f"{self.subject}\n\n"
            f"Issue type: {self.issue_type}\n"
            f"Machine: {self.asset} ({self.signal})\n"
            f"State: {self.state}\n"
            f"Evidence: {self.summary}\n"
            f"First response: {self.first_response}\n"
            f"{level}"
            f"Raised at: {self.raised_at}\n"
            f"Alert: {self.link}\n"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "alarm_id": self.alarm_id,
            "issue_type": self.issue_type,
            "title": self.title,
            "priority": self.priority,
            "plant": self.plant,
            "asset": self.asset,
            "signal": self.signal,
            "state": self.state,
            "summary": self.summary,
            "first_response": self.first_response,
            "level": self.level,
            "contact": self.contact,
            "raised_at": self.raised_at,
            "link": self.link,
        }


class DeliveryError(Exception):
    """A notification that did not go out. `retryable`: try again later (the receiver was down
    or busy), else give up now (a 4xx answer, a refused address)."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Notifier(Protocol):
    channel: str

    async def send(self, notification: Notification, target: Any) -> None:
        """Deliver to `target` (the channel's configuration); DeliveryError when it fails."""
        ...

    async def close(self) -> None: ...
