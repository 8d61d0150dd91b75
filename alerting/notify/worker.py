"""The delivery stage: leases due deliveries, sends them concurrently, records each outcome.
A receiver that is down is retried with capped backoff up to `max_attempts`; a refusal that
retrying cannot fix (HTTP 4xx, an unknown mailbox, a contact no longer configured) fails at
once. Every outcome stays on the delivery's row.

Sending does not hold up leasing: `dispatch` starts each send as a task and returns, so a
receiver that hangs until its timeout delays only its own deliveries, and it never holds more
than PER_CONTACT of the CONCURRENCY slots."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.catalogue import Catalogue
from alerting.lifecycle.policies import EscalationConfig
from alerting.notify.base import DeliveryError, Notification, Notifier
from alerting.notify.registry import make_notifiers
from alerting.records import deliveries
from alerting.records.deliveries import Delivery
from alerting.records.queries import AlarmNotFoundError, get_alarm
from alerting.records.schema import aware

log = logging.getLogger(__name__)

CONCURRENCY = 20
PER_CONTACT = 8
"""Sends in flight to one contact at most."""
SETTLE_S = 30.0
"""How long closing waits for sends in flight to be recorded (the lease is 30 s too: a send
not recorded by then may be sent again by whoever leases it next)."""


class DeliveryWorker:
    def __init__(
        self,
        engine: AsyncEngine,
        config: EscalationConfig,
        catalogue: Catalogue,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_attempts: int = 8,
        notifiers: dict[str, Notifier] | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.catalogue = catalogue
        self.clock = clock
        self.max_attempts = max_attempts
        self.notifiers = notifiers if notifiers is not None else make_notifiers(config)
        self._inflight: set[asyncio.Task[None]] = set()
        self._per_contact: Counter[str] = Counter()
        self.held_back = False
        """The last dispatch may have left due deliveries behind (no free slot, or a contact
        at its limit): a send ending is worth another dispatch."""
        self.on_done: Callable[[], None] | None = None
        """Called when a send ends while deliveries were held back."""
        self.sent = 0
        self.failed = 0

    async def dispatch(self, limit: int = CONCURRENCY) -> int:
        """Lease what is due and start sending it, without waiting for the answers; how many
        sends started (0: nothing due, or every slot busy)."""
        free = min(limit, CONCURRENCY - len(self._inflight))
        if free <= 0:
            self.held_back = True
            return 0
        batch = await deliveries.claim(
            self.engine, self.clock(), free, PER_CONTACT, in_flight=self._per_contact
        )
        for delivery in batch:
            self._per_contact[delivery.contact] += 1
            task = asyncio.create_task(self._deliver(delivery), name=f"deliver-{delivery.id}")
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        busy = any(n >= PER_CONTACT for n in self._per_contact.values())
        self.held_back = len(batch) == free or busy
        return len(batch)

    async def settle(self, timeout_s: float | None = None) -> None:
        """Wait until the sends in flight are recorded."""
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=timeout_s)

    async def run_once(self, limit: int = 100) -> int:
        """Send everything due and wait for the outcomes; how many sends (tests, one-shots)."""
        await self.settle()  # what is in flight first: its contacts have their slots back
        handled = 0
        while handled < limit and (started := await self.dispatch(limit - handled)):
            handled += started
            await self.settle()
        return handled

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            await self._send(delivery)
        except Exception:  # the database failed us: the lease runs out and it is sent later
            log.exception("delivery %s: outcome not recorded, retried after its lease", delivery.id)
        finally:
            self._per_contact[delivery.contact] -= 1
            if self.held_back and self.on_done is not None:
                self.on_done()

    async def _send(self, delivery: Delivery) -> None:
        try:
            notification, target = await self._prepare(delivery)
            await self.notifiers[delivery.channel].send(notification, target)
        except DeliveryError as exc:
            attempts = self.max_attempts if exc.retryable else 0
            final = await deliveries.mark_failed(
                self.engine, delivery, str(exc), self.clock(), attempts
            )
            self.failed += final
            log.warning(
                "delivery %s (%s to %s via %s) failed%s: %s",
                delivery.id,
                delivery.kind,
                delivery.contact,
                delivery.channel,
                ", giving up" if final else ", will retry",
                exc,
            )
        else:
            await deliveries.mark_sent(self.engine, delivery, self.clock())
            self.sent += 1

    async def _prepare(self, delivery: Delivery) -> tuple[Notification, object]:
        contact = next((c for c in self.config.contacts if c.name == delivery.contact), None)
        if contact is None or delivery.channel_index >= len(contact.channels):
            raise DeliveryError(f"contact {delivery.contact!r} is no longer configured", False)
        target = contact.channels[delivery.channel_index]
        if delivery.channel not in self.notifiers or target.type != delivery.channel:
            raise DeliveryError(f"{delivery.contact!r} channel changed since", retryable=False)
        try:
            row = await get_alarm(self.engine, delivery.alarm_id)
        except AlarmNotFoundError as exc:
            raise DeliveryError(str(exc), retryable=False) from exc
        try:
            issue = self.catalogue.get(row.issue_type)
            title, first_response = issue.title, issue.first_response
        except KeyError:
            title, first_response = row.issue_type, "(not in the catalogue)"
        notification = Notification(
            kind=delivery.kind.value,
            alarm_id=row.id,
            issue_type=row.issue_type,
            title=title,
            priority=row.priority,
            plant=row.plant,
            asset=f"{row.plant}/{row.area}/{row.line}/{row.machine}",
            signal=row.signal,
            state=row.state,
            summary=str(row.evidence.get("summary", "")),
            first_response=first_response,
            link=f"{self.config.console_url.rstrip('/')}/alarms/{row.id}",
            level=delivery.level,
            contact=delivery.contact,
            raised_at=aware(row.raised_at).isoformat(),
            delivery=str(delivery.id),
        )
        return notification, target

    async def close(self) -> None:
        await self.settle(SETTLE_S)
        for notifier in {id(n): n for n in self.notifiers.values()}.values():
            await notifier.close()
