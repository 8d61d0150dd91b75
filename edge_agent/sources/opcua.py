"""OPC UA source: one client session, one subscription, every data change becomes a Reading.

The supervisor here is deliberately simple: any loss tears the whole session down and builds it
again (connect, browse, subscribe) after a capped, jittered backoff. Browsing again after a
reconnect also picks up a PLC program that changed while we were away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.subscription import (
    DataChangeEvent,
    OverflowPolicy,
    StatusChangeEvent,
    Subscription,
)
from asyncua.ua.uaerrors import UaError

from edge_agent.config import OpcUaSourceConfig
from edge_agent.errors import SourceError, report
from edge_agent.sources import ReadingSink, SourceState
from edge_agent.sources.opcua_browse import (
    CHUNK,
    Binding,
    explicit_bindings,
    read_units,
    resolve_root,
    walk_root,
)
from plantmesh.contracts import Quality, Reading, SourceHealth
from plantmesh.resilience import Backoff, ErrorLog

log = logging.getLogger(__name__)

# What a broken connection or a misbehaving server raises out of asyncua.
RECOVERABLE = (OSError, TimeoutError, ConnectionError, UaError, SourceError)
# Notifications asyncua holds for us between two turns of our loop.
NOTIFICATION_QUEUE = 50_000


def to_value(raw: Any) -> float | bool | str | None:
    """An OPC UA variant value as a Reading value; None for what a reading cannot carry
    (arrays, structures, NaN)."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, Enum):
        raw = raw.value
    if isinstance(raw, int | float):
        number = float(raw)
        return number if math.isfinite(number) else None
    if isinstance(raw, str):
        return raw
    if isinstance(raw, datetime):
        return raw.isoformat()
    if isinstance(raw, ua.LocalizedText):
        return raw.Text
    return None


def _aware(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


class OpcUaSource:
    def __init__(self, config: OpcUaSourceConfig, plant: str, sink: ReadingSink) -> None:
        self.config = config
        self.name = config.name
        self.plant = plant
        self.state = SourceState(config.name)
        self._sink = sink
        self._errors = ErrorLog(log, f"opcua source {config.name} ({config.endpoint})")
        self._bindings: dict[ua.NodeId, Binding] = {}
        self.subscribed = 0
        """How many variables the current session has monitored items for."""
        self.sessions = 0
        """Sessions that got as far as streaming (1 + successful reconnects)."""

    def start(self, tg: asyncio.TaskGroup) -> list[asyncio.Task[None]]:
        return [tg.create_task(self.run(), name=f"source:{self.name}")]

    def health(self) -> list[SourceHealth]:
        return [self.state.health()]

    async def run(self) -> None:
        backoff = Backoff(0.5, 30.0)
        while True:
            if await self._session():
                backoff.reset()
            await asyncio.sleep(backoff.next_delay())

    def _fail(self, what: str, error: BaseException | str) -> None:
        self.state.errors += 1
        report(self._errors, what, error)

    async def _session(self) -> bool:
        """One connection's life. True if it got as far as receiving data."""
        client = Client(self.config.endpoint, timeout=self.config.request_timeout_s)
        lost = asyncio.Event()

        async def on_lost(_: Exception) -> None:
            lost.set()

        client.connection_lost_callback = on_lost
        try:
            await client.connect()
        except RECOVERABLE as exc:
            self._fail("connect", exc)
            await self._close(client)
            return False
        # Before subscribing: a node the server refuses is this session's news, not old news.
        self._errors.succeeded()
        streamed = False
        try:
            bindings = await self._discover(client)
            if not bindings:
                raise SourceError("nothing to subscribe: no variables found")
            subscription = await client.create_subscription(
                self.config.publishing_interval_ms,
                None,
                queue_maxsize=NOTIFICATION_QUEUE,
                overflow=OverflowPolicy.DROP_OLDEST,
            )
            await self._subscribe(subscription, bindings)
            if not self._bindings:
                raise SourceError("no variable could be subscribed")
            self.state.connected = True
            log.info(
                "opcua source %s: subscribed %d variables at %s",
                self.name,
                len(self._bindings),
                self.config.endpoint,
            )
            streamed = True
            self.sessions += 1
            await self._stream(subscription, lost)
            self._fail("connection", "connection lost")
        except RECOVERABLE as exc:
            self._fail("session", exc)
        finally:
            self.state.connected = False
            self.subscribed = 0
            await self._close(client)
        return streamed

    async def _discover(self, client: Client) -> list[Binding]:
        bindings = explicit_bindings(client, self.plant, self.config.nodes)
        for root in self.config.browse:
            try:
                node = await resolve_root(client, root)
            except SourceError as exc:
                self._fail(f"browse {root.root}", exc)
                continue
            bindings.extend(await walk_root(client, self.plant, node))
        return await read_units(client, bindings)

    async def _subscribe(self, subscription: Subscription, bindings: Sequence[Binding]) -> None:
        """Monitored items for every binding; one that the server refuses is logged and left
        out, the others still stream."""
        self._bindings = {}
        for start in range(0, len(bindings), CHUNK):
            chunk = bindings[start : start + CHUNK]
            results = await subscription.subscribe_data_change(
                [b.node for b in chunk],
                queuesize=self.config.queue_size,
                sampling_interval=ua.Double(self.config.sampling_interval_ms),
            )
            for binding, result in zip(chunk, results, strict=True):
                if isinstance(result, ua.StatusCode):
                    self._fail(
                        f"subscribe {binding.node.nodeid.to_string()}",
                        f"server refused the monitored item ({result.name})",
                    )
                else:
                    self._bindings[binding.node.nodeid] = binding
        self.subscribed = len(self._bindings)

    async def _stream(self, subscription: Subscription, lost: asyncio.Event) -> None:
        while not lost.is_set():
            try:
                event = await subscription.next_event(timeout=0.5)
            except StopAsyncIteration:
                return
            if isinstance(event, DataChangeEvent):
                self._on_data_change(event)
            elif isinstance(event, StatusChangeEvent):
                status = event.notification.Status
                if status is not None and not status.is_good():
                    self._fail("subscription", f"subscription status {status.name}")
                    return

    def _on_data_change(self, event: DataChangeEvent) -> None:
        binding = self._bindings.get(event.node.nodeid)
        if binding is None:
            return
        data_value: ua.DataValue = event.data.monitored_item.Value
        raw = data_value.Value.Value if data_value.Value is not None else None
        value = to_value(raw)
        if value is None:
            if raw is not None:
                self._fail(
                    f"value of {binding.asset.key}/{binding.signal}",
                    f"unsupported value {type(raw).__name__} (readings carry numbers, booleans, text)",
                )
            return
        status = data_value.StatusCode.value if data_value.StatusCode is not None else 0
        now = datetime.now(UTC)
        source_ts = _aware(data_value.SourceTimestamp) or _aware(data_value.ServerTimestamp) or now
        try:
            reading = Reading(
                asset=binding.asset,
                signal=binding.signal,
                value=value,
                unit=binding.unit,
                status_code=status,
                quality=Quality.from_status_code(status),
                source_ts=source_ts,
                gateway_ts=now,
            )
        except ValueError as exc:
            self._fail(f"value of {binding.asset.key}/{binding.signal}", exc)
            return
        self.state.seen()
        self._sink(reading)

    async def _close(self, client: Client) -> None:
        # Best effort: the server may already be gone, and we are leaving either way.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.disconnect(), timeout=2.0)
