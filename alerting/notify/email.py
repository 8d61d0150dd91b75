"""E-mail over SMTP (the standard library's client, in a thread: one message at a time is all
a plant's alarm load needs)."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from typing import Any

from alerting.lifecycle.policies import Email, Smtp
from alerting.notify.base import DeliveryError, Notification


class EmailNotifier:
    channel = "email"

    def __init__(self, smtp: Smtp) -> None:
        self.smtp = smtp

    def message(self, notification: Notification, to: list[str]) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = notification.subject
        message["From"] = self.smtp.sender
        message["To"] = ", ".join(to)
        # One thread per alarm in mail clients: every message of an alarm refers to the first.
        message["References"] = f"<{notification.alarm_id}@plantmesh>"
        message["X-Plantmesh-Alarm"] = notification.alarm_id
        if notification.delivery:  # the same on a resend: mail systems drop the second copy
            message["Message-ID"] = f"<{notification.delivery}.{notification.alarm_id}@plantmesh>"
        message.set_content(notification.text)
        return message

    async def send(self, notification: Notification, target: Any) -> None:
        assert isinstance(target, Email)
        message = self.message(notification, target.to)
        try:
            await asyncio.to_thread(self._send, message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"SMTP refused {target.to}: {exc}", retryable=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {self.smtp.host}:{self.smtp.port}: {exc!r}") from exc

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.smtp.host, self.smtp.port, timeout=self.smtp.timeout_s) as client:
            if self.smtp.starttls:
                client.starttls()
            if self.smtp.username:
                password = self.smtp.password.get_secret_value() if self.smtp.password else ""
                client.login(self.smtp.username, password)
            client.send_message(message)

    async def close(self) -> None:
        return None
