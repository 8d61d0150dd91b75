"""The channels a contact can be reached through: channel type -> the Notifier that sends it.
One instance per type is shared by every delivery (HTTP connections are pooled)."""

from __future__ import annotations

from collections.abc import Callable

from alerting.lifecycle.policies import EscalationConfig
from alerting.notify.base import Notifier
from alerting.notify.email import EmailNotifier
from alerting.notify.http import ChatNotifier, WebhookNotifier

NOTIFIER_TYPES: dict[str, Callable[[EscalationConfig], Notifier]] = {
    "webhook": lambda _config: WebhookNotifier(),
    "chat": lambda _config: ChatNotifier(),
    "email": lambda config: EmailNotifier(config.smtp),
}
CHANNEL_NOTIFIER = {"webhook": "webhook", "slack": "chat", "teams": "chat", "email": "email"}
"""Which notifier serves each channel type of the contacts' configuration."""


def make_notifiers(config: EscalationConfig) -> dict[str, Notifier]:
    """channel type -> notifier, one notifier instance per kind."""
    made = {name: factory(config) for name, factory in NOTIFIER_TYPES.items()}
    return {channel: made[kind] for channel, kind in CHANNEL_NOTIFIER.items()}
