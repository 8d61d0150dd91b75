"""OPC UA source: one client session at a time; every data change or polled value becomes a
Reading.

The supervisor tears the whole session down and builds it again (connect, resolve, subscribe)
after a capped, jittered backoff whenever the session is lost: the transport closes, asyncua's
watchdog cannot read the server state, or neither data nor a keep-alive arrived for
`keepalive_timeout_s`. Resolving again on every connect matters: a restarted server may number
its namespaces differently, and a changed PLC program may have moved or added variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError

from edge_agent.config import OpcUaSourceConfig
from edge_agent.errors import SourceError, report
from edge_agent.reading_json import MachineJson, SignalJson, timestamp_json
from edge_agent.sources import ReadingSink, SourceState
from edge_agent.sources.connection_log import ConnectionLog
from edge_agent.sources.opcua_browse import (
    CHUNK,
    Binding,
    explicit_bindings,
    read_ranges,
    read_units,
    resolve_root,
    walk_root,
)
from edge_agent.sources.opcua_client import build_client
from edge_agent.sources.opcua_options import (
    absolute_deadband,
    effective_options,
    monitored_item_request,
)
from edge_agent.sources.opcua_readings import ReadingTexts
from edge_agent.sources.opcua_stream import DirectSubscription, create_subscription
from plantmesh.contracts import AssetPath, SourceHealth
from plantmesh.resilience import Backoff, ErrorLog, raise_if_cancelled

log = logging.getLogger(__name__)

# What a broken connection or a misbehaving server raises out of asyncua.
RECOVERABLE = (OSError, TimeoutError, ConnectionError, UaError, SourceError, ValueError)
# The server is asked for a keep-alive this many times per `keepalive_timeout_s`.
KEEPALIVES_PER_TIMEOUT = 3


def subscription_parameters(config: OpcUaSourceConfig) -> ua.CreateSubscriptionParameters:
    """Keep-alives often enough that a silent session is noticed within keepalive_timeout_s."""
    params = ua.CreateSubscriptionParameters()
    params.RequestedPublishingInterval = config.publishing_interval_ms
    keepalive_ms = config.keepalive_timeout_s * 1000 / KEEPALIVES_PER_TIMEOUT
    params.RequestedMaxKeepAliveCount = max(1, int(keepalive_ms / config.publishing_interval_ms))
    # Part 4: the lifetime count is at least three keep-alive counts.
    params.RequestedLifetimeCount = params.RequestedMaxKeepAliveCount * 3
    params.MaxNotificationsPerPublish = 0
    params.PublishingEnabled = True
    params.Priority = 0
    return params


class OpcUaSource:
    def __init__(self, config: OpcUaSourceConfig, plant: str, sink: ReadingSink) -> None:
        self.config = config
        self.name = config.name
        self.plant = plant
        self.state = SourceState(config.name)
        self._sink = sink
        self._errors = ErrorLog(log, f"opcua source {config.name} ({config.endpoint})")
        # Losses and recoveries of the session: one line each, whatever the retries meet.
        self._link = ConnectionLog(log, self._errors.what)
        self._lost_reason: BaseException | str = "connection lost"
        self._handles: dict[int, tuple[Binding, SignalJson]] = {}
        self._texts = ReadingTexts(self._fail)
        self._session_lost: asyncio.Event | None = None
        self.subscribed = 0
        """How many variables the current session has monitored items for."""
        self.polled = 0
        """How many variables the current session polls."""
        self.sessions = 0
        """Sessions that got as far as streaming (1 + successful reconnects)."""
        self.bad_nodes = 0
        """Configured variables the current session could not read (their readings are Bad)."""

    def start(self, tg: asyncio.TaskGroup) -> list[asyncio.Task[None]]:
        return [tg.create_task(self.run(), name=f"source:{self.name}")]

    def health(self) -> list[SourceHealth]:
        return [self.state.health()]

    async def run(self) -> None:
        backoff = Backoff(min(0.5, self.config.reconnect_max_s), self.config.reconnect_max_s)
        while True:
            raise_if_cancelled()
            if await self._session():
                backoff.reset()
            await asyncio.sleep(backoff.next_delay())

    def _fail(self, what: str, error: BaseException | str) -> None:
        self.state.errors += 1
        report(self._errors, what, error)

    def _lost(self, error: BaseException | str) -> None:
        """A connect attempt failed or the session ended."""
        self.state.errors += 1
        self._link.failed(error)

    async def _session(self) -> bool:
        """One connection's life. True if it got as far as receiving data."""
        lost = self._session_lost = asyncio.Event()
        self._lost_reason = "connection lost"

        async def on_lost(exc: Exception) -> None:
            self._lost_reason = exc
            lost.set()

        try:
            client = await build_client(self.config)
        except RECOVERABLE as exc:
            self._lost(exc)
            return False
        client.connection_lost_callback = on_lost
        try:
            await client.connect()
        except RECOVERABLE as exc:
            self._lost(exc)
            await self._close(client)
            return False
        # Before subscribing, and quietly: a node the server refuses is this session's news.
        self._errors = ErrorLog(log, self._errors.what)
        streamed = False
        try:
            bindings = await self._discover(client)
            subscription = None
            subscribed = [b for b in bindings if b.options.mode == "subscribe"]
            polled = [b for b in bindings if b.options.mode == "poll"]
            if subscribed:
                subscription = await create_subscription(
                    client, subscription_parameters(self.config), self._on_changes, self._on_status
                )
                await self._subscribe(subscription, subscribed)
            self.polled = len(polled)
            if not self._handles and not polled:
                raise SourceError("no variable could be subscribed or polled")
            self.state.connected = True
            counts = f"{self.subscribed} variables subscribed, {self.polled} polled"
            if not self._link.connected(detail=counts):
                log.info("opcua source %s: %s at %s", self.name, counts, self.config.endpoint)
            streamed = True
            self.sessions += 1
            await self._stream(client, subscription, polled, lost)
            self._lost(self._lost_reason)
        except RECOVERABLE as exc:
            self._lost(exc)
        finally:
            self.state.connected = False
            self.subscribed = self.polled = 0
            await self._close(client)
        return streamed

    async def _discover(self, client: Client) -> list[Binding]:
        bindings, unresolved = await explicit_bindings(client, self.config, self.plant)
        for root in self.config.browse:
            try:
                node = await resolve_root(client, root)
            except SourceError as exc:
                self._fail(f"browse {root.root}", exc)
                continue
            options = effective_options(self.config, root)
            bindings.extend(await walk_root(client, self.plant, node, options, root))
        if not bindings and not unresolved:
            raise SourceError("nothing to read: no variables found")
        bindings = await read_ranges(client, await read_units(client, bindings))
        self.bad_nodes = 0
        for item in unresolved:
            self._bad(item.asset, item.signal, item.unit, item.status, item.address, item.reason)
        return bindings

    def _bad(
        self,
        asset: AssetPath,
        signal: str,
        unit: str | None,
        status: int,
        address: str,
        reason: str,
    ) -> None:
        """One variable cannot be read this session: count it, log it once, and publish a
        reading with its Bad status and no value so the outage is visible downstream while
        the other variables keep streaming."""
        self.bad_nodes += 1
        self._fail(address, reason)
        now = timestamp_json(datetime.now(UTC))
        signal_json = self._texts.signal(asset, signal, unit)
        self._sink(signal_json.machine, [signal_json.reading(None, status, now, now)])

    async def _subscribe(
        self, subscription: DirectSubscription, bindings: Sequence[Binding]
    ) -> None:
        """Monitored items for every binding; one that the server refuses is reported Bad and
        left out, the others still stream."""
        self._handles = {}
        handle = 0
        for start in range(0, len(bindings), CHUNK):
            requests: list[ua.MonitoredItemCreateRequest] = []
            chunk: list[tuple[int, Binding]] = []
            for binding in bindings[start : start + CHUNK]:
                deadband = absolute_deadband(binding.options, binding.eu_range)
                if deadband is None:
                    self._bad_binding(
                        binding,
                        StatusCodes.BadDeadbandFilterInvalid,
                        "percent deadband but the variable has no EURange",
                    )
                    continue
                handle += 1
                requests.append(
                    monitored_item_request(binding.node.nodeid, handle, binding.options, deadband)
                )
                chunk.append((handle, binding))
                # Known before the request goes out: the initial values may arrive (in the
                # publish loop) before create_monitored_items returns.
                signal_json = self._texts.signal(binding.asset, binding.signal, binding.unit)
                self._handles[handle] = (binding, signal_json)
            if not requests:
                continue
            results = await subscription.create_monitored_items(requests)
            for (handle_, binding), result in zip(chunk, results, strict=True):
                if isinstance(result, ua.StatusCode):
                    del self._handles[handle_]
                    self._bad_binding(
                        binding, result.value, f"server refused the monitored item ({result.name})"
                    )
        self.subscribed = len(self._handles)

    def _bad_binding(self, binding: Binding, status: int, reason: str) -> None:
        address = binding.node.nodeid.to_string()
        self._bad(binding.asset, binding.signal, binding.unit, status, address, reason)

    async def _stream(
        self,
        client: Client,
        subscription: DirectSubscription | None,
        polled: list[Binding],
        lost: asyncio.Event,
    ) -> None:
        """Run the polls that are due until the session is lost; subscribed values arrive by
        `_on_changes` meanwhile."""
        groups: dict[float, list[Binding]] = defaultdict(list)
        for binding in polled:
            groups[binding.options.poll_interval_s].append(binding)
        due = dict.fromkeys(groups, time.monotonic())
        heard = time.monotonic()
        while not lost.is_set():
            raise_if_cancelled()
            for interval, when in due.items():
                if when <= time.monotonic():
                    await self._poll(client, groups[interval])
                    heard = time.monotonic()
                    # Fixed cadence; a poll that overran skips the ticks it missed.
                    due[interval] = max(when + interval, heard)
            window = max(0.0, min([0.5, *(when - time.monotonic() for when in due.values())]))
            await _wait(lost, window)
            if subscription is None:
                continue
            if subscription.last_publish_at is not None:
                heard = max(heard, subscription.last_publish_at)
            if time.monotonic() - heard > self.config.keepalive_timeout_s:
                raise SourceError(
                    f"neither data nor keep-alive for {self.config.keepalive_timeout_s:g}s"
                )

    def _on_status(self, status: ua.StatusCode) -> None:
        """The subscription's status changed: anything but good ends the session."""
        if status.is_good() or self._session_lost is None:
            return
        if not isinstance(self._lost_reason, BaseException):  # the cause says more
            self._lost_reason = f"subscription status {status.name}"
        self._session_lost.set()

    def _on_changes(self, items: list[ua.MonitoredItemNotification]) -> None:
        """One publish response's data changes, handed on per machine."""
        gateway_ts = timestamp_json(datetime.now(UTC))
        by_machine: dict[MachineJson, list[str]] = {}
        handles = self._handles
        for item in items:
            bound = handles.get(item.ClientHandle)
            if bound is None:
                continue
            text = self._texts.text(bound[0], bound[1], item.Value, gateway_ts)
            if text is not None:
                texts = by_machine.get(bound[1].machine)
                if texts is None:
                    by_machine[bound[1].machine] = [text]
                else:
                    texts.append(text)
        published = 0
        for machine, texts in by_machine.items():
            self._sink(machine, texts)
            published += len(texts)
        self.state.seen(published)

    async def _poll(self, client: Client, bindings: list[Binding]) -> None:
        for start in range(0, len(bindings), CHUNK):
            chunk = bindings[start : start + CHUNK]
            values = await client.read_attributes([b.node for b in chunk])
            for binding, data_value in zip(chunk, values, strict=True):
                self._on_value(binding, data_value)

    def _on_value(self, binding: Binding, data_value: ua.DataValue) -> None:
        """One value of one variable (polls; tests)."""
        signal = self._texts.signal(binding.asset, binding.signal, binding.unit)
        text = self._texts.text(binding, signal, data_value, timestamp_json(datetime.now(UTC)))
        if text is not None:
            self._sink(signal.machine, [text])
            self.state.seen()

    async def _close(self, client: Client) -> None:
        # Best effort: the server may already be gone, and we are leaving either way.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await client.disconnect()


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(timeout, 0.0)):
            await event.wait()
