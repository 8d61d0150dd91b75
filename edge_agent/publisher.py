"""The publisher: collects readings, batches them per machine, and gets every batch acknowledged
by the broker (QoS 1), across reconnects.

Path of a reading: `submit` (never blocks a source; counts drops when the queue is full) ->
encoded into the Batcher, at most `queue_size` waiting -> every `publish_interval_s` one
ReadingBatch per machine -> BatchBuffer (up to PUT_CHUNK batches per write) -> MQTT. A batch
leaves the buffer only when its PUBACK arrives. The buffer is the only place batches wait: the
publisher keeps at most `MAX_INFLIGHT` of them in flight and reads the next ones, in buffer
order, as acknowledgements come in; after a reconnect it starts again from the oldest
unacknowledged one. So a backlog of a day drains in order without being loaded into
memory, and new batches queue behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from edge_agent.batching import Batcher
from edge_agent.buffer import BatchBuffer, NewBatch
from edge_agent.config import AgentConfig
from edge_agent.errors import PublishError, report
from edge_agent.mqtt_link import MAX_INFLIGHT, MqttLink
from edge_agent.publisher_stats import PublisherStats
from edge_agent.reading_json import MachineJson
from plantmesh import __version__
from plantmesh.contracts import (
    GatewayHealth,
    GatewayState,
    GatewayStatus,
    Reading,
    SourceHealth,
    encode,
)
from plantmesh.resilience import Backoff, ErrorLog
from plantmesh.topics import Topics

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
EXPIRE_EVERY_S = 10.0
# Batches handed to the buffer per write: what an interval made is never all in memory at once
# as payloads, and yet a thousand machines cost two disk writes (each syncs), not ten.
PUT_CHUNK = 500


class Publisher:
    def __init__(
        self,
        config: AgentConfig,
        session_id: str,
        buffer: BatchBuffer,
        first_seq: int = 0,
        stats: PublisherStats | None = None,
    ) -> None:
        """`first_seq` and `stats` carry a session on when a reload replaces the publisher."""
        self.config = config
        self.session_id = session_id
        self.buffer = buffer
        self.topics = Topics(config.namespace)
        self.status_topic = self.topics.mqtt_gateway_status(config.plant, config.gateway_id)
        self.stats = stats or PublisherStats()
        self.batcher = Batcher(config.gateway_id, session_id, config.max_readings_per_batch)
        self.batcher.next_seq = first_seq
        self._link: MqttLink | None = None
        self._inflight: dict[int, tuple[int, int]] = {}
        """mid -> (buffer id, readings) of batches published on this connection, not acked."""
        self._cursor = 0
        """Buffer id of the last batch published on this connection."""
        self._more = True
        """The buffer may hold batches after the cursor: False once a read came back short,
        until new batches are put or the connection starts over (then the window refills
        without a query per acknowledgement)."""
        self._next_expiry = 0.0
        self._status_acks: dict[int, asyncio.Future[bool]] = {}
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._flushed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._errors = ErrorLog(log, f"mqtt {config.mqtt.url}")
        # One per kind of loss, so one kind's recovery does not re-arm another's message.
        self._queue_drops = ErrorLog(log, "publisher queue")
        self._buffer_drops = ErrorLog(log, "publisher buffer")
        self._rejections = ErrorLog(log, "publisher")
        self._dropped_before = 0
        self.client_id = config.mqtt.client_id or f"plantmesh-agent-{config.gateway_id}"

    # --- what sources and the agent call ---------------------------------------------------
    def submit(self, reading: Reading) -> None:
        """Take one reading. Never blocks: when the queue is full the reading is dropped and
        counted, so a slow broker never stalls a PLC poll or subscription."""
        if len(self.batcher) >= self.config.queue_size:
            self.stats.dropped_readings += 1
            report(
                self._queue_drops, "full", f"{self.config.queue_size} readings waiting; dropping"
            )
            return
        self.batcher.add(reading)
        self.stats.readings_in += 1

    def submit_json(self, machine: MachineJson, readings: list[str]) -> None:
        """Take one machine's readings as JSON text (what sources hand on). Never blocks: what
        does not fit in the queue is dropped and counted."""
        room = self.config.queue_size - len(self.batcher)
        if room < len(readings):
            dropped = len(readings) - max(room, 0)
            self.stats.dropped_readings += dropped
            report(
                self._queue_drops, "full", f"{self.config.queue_size} readings waiting; dropping"
            )
            readings = readings[: max(room, 0)]
            if not readings:
                return
        self.batcher.add_json(machine, readings)
        self.stats.readings_in += len(readings)

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.is_connected

    @property
    def healthy(self) -> bool:
        """Its tasks are running (whether or not the broker is reachable): the watchdog's test."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    @property
    def dropped_batches(self) -> int:
        """Every batch given up on, for whatever reason, in this session."""
        return (
            self.buffer.drops.total + self.stats.batches_rejected + self.stats.batches_lost_at_stop
        )

    def start(self, tg: asyncio.TaskGroup) -> None:
        self._tasks = [
            tg.create_task(self._connection_loop(), name="publisher:mqtt"),
            tg.create_task(self._batch_loop(), name="publisher:batcher"),
        ]

    async def close(self) -> None:
        """Batch what is collected, wait (up to shutdown_timeout_s) for the broker to acknowledge
        everything, publish death, disconnect."""
        self.flush()
        self._stop.set()
        self._wake.set()
        deadline = self.config.shutdown_timeout_s + 2 * CONNECT_TIMEOUT_S
        _, pending = await asyncio.wait(self._tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.buffer.sync()
        if not len(self.buffer):
            return
        if self.buffer.persistent:
            log.info(
                "stopping with %d unacknowledged batches; they stay in the buffer for the next "
                "start",
                len(self.buffer),
            )
        else:
            self.stats.batches_lost_at_stop += len(self.buffer)
            log.warning(
                "stopping with %d unacknowledged batches (in-memory buffer: they are lost)",
                len(self.buffer),
            )

    def health(self, sources: list[SourceHealth]) -> GatewayHealth:
        return GatewayHealth(
            buffer_depth=len(self.buffer),
            oldest_unsent_age_s=self.buffer.oldest_age_s(),
            dropped_batches=self.dropped_batches,
            dropped_readings=self.stats.dropped_readings,
            reconnects=self.stats.reconnects,
            sources=sources,
        )

    def publish_health(self, health: GatewayHealth) -> bool:
        """Publish a health status (not retained: the retained message is birth or death).
        False when not connected; health is a snapshot, never buffered."""
        link = self._link
        if link is None or not link.is_connected:
            return False
        link.publish(self.status_topic, encode(self._status(GatewayState.HEALTH, health)))
        return True

    # --- batching ---------------------------------------------------------------------------
    def flush(self) -> int:
        """Turn every collected reading into batches now; returns how many batches were made."""
        if self.stats.dropped_readings == self._dropped_before:
            self._queue_drops.succeeded()
        self._dropped_before = self.stats.dropped_readings
        self._housekeeping()
        made = 0
        chunk: list[NewBatch] = []
        for batch in self.batcher.take(datetime.now(UTC)):
            chunk.append(
                NewBatch(
                    session_id=self.session_id,
                    seq=batch.seq,
                    topic=self.topics.mqtt_readings(batch.asset),
                    payload=batch.payload,
                    readings=batch.readings,
                )
            )
            if len(chunk) == PUT_CHUNK:
                made += self._put(chunk)
                chunk = []
        if chunk:
            made += self._put(chunk)
        if made:
            self._more = True
            self._pump()
        return made

    def _put(self, batches: list[NewBatch]) -> int:
        if self.buffer.put(batches):
            report(self._buffer_drops, "full", "dropping the oldest unacknowledged batches")
        self.stats.batches_made += len(batches)
        return len(batches)

    def _housekeeping(self) -> None:
        """Make acknowledgements durable; now and then, drop batches past the age limit."""
        self.buffer.sync()
        now = asyncio.get_running_loop().time()
        if now >= self._next_expiry:
            self._next_expiry = now + EXPIRE_EVERY_S
            if self.buffer.expire():
                report(self._buffer_drops, "age", "dropping batches older than the age limit")

    async def _batch_loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.publish_interval_s):
                    await self._stop.wait()
            self.flush()

    # --- the connection ---------------------------------------------------------------------
    def _pump(self) -> None:
        """Publish the next batches in buffer order, up to MAX_INFLIGHT unacknowledged."""
        link = self._link
        if link is None or not link.is_connected:
            return  # they stay in the buffer; published on (re)connect
        room = MAX_INFLIGHT - len(self._inflight)
        if room <= 0 or not self._more:
            return
        batches = self.buffer.read(self._cursor, room)
        self._more = len(batches) == room
        for batch in batches:
            self._inflight[link.publish(batch.topic, batch.payload)] = (batch.id, batch.readings)
            self._cursor = batch.id
            self.stats.batches_sent += 1

    def _on_ack(self, link: MqttLink, mid: int, accepted: bool) -> None:
        if link is not self._link:
            return  # an old connection's late ack: its batches are republished anyway
        waiter = self._status_acks.pop(mid, None)
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(accepted)
            return
        sent = self._inflight.pop(mid, None)
        if sent is None:
            return
        batch_id, readings = sent
        held = self.buffer.ack(batch_id)  # False: already pushed out of a full buffer
        if held and accepted:
            self.stats.batches_acked += 1
            self.stats.readings_acked += readings
        elif held:
            # Republishing would be refused again (e.g. not authorized): drop it, counted.
            self.stats.batches_rejected += 1
            report(self._rejections, "broker", "the broker rejected a batch (PUBACK failure)")
        # Refill the window in chunks rather than one read per ack.
        if len(self._inflight) <= MAX_INFLIGHT // 2:
            self._pump()
        if not self._inflight:
            self._flushed.set()

    def _status(
        self, state: GatewayState, health: GatewayHealth | None = None, *, planned: bool = False
    ) -> GatewayStatus:
        return GatewayStatus(
            gateway_id=self.config.gateway_id,
            plant=self.config.plant,
            session_id=self.session_id,
            state=state,
            at=datetime.now(UTC),
            agent_version=__version__,
            health=health,
            planned=planned,
        )

    async def _connection_loop(self) -> None:
        max_s = self.config.mqtt.reconnect_max_s
        backoff = Backoff(min(0.5, max_s), max_s)
        while not self._stop.is_set():
            try:
                link = MqttLink(
                    self.config.mqtt,
                    self.client_id,
                    will=(self.status_topic, self._death()),
                    on_ack=self._on_ack,
                    on_lost=self._wake.set,
                )
            except PublishError as exc:  # e.g. a CA file that is not there (yet)
                report(self._errors, "setup", exc)
                await backoff.wait(self._stop)
                continue
            try:
                await link.connect(CONNECT_TIMEOUT_S)
                await self._serve(link)
                backoff.reset()
                if self._stop.is_set():
                    await self._say_goodbye(link)
                else:
                    report(
                        self._errors, "connection", f"connection lost ({link.disconnect_reason})"
                    )
            except PublishError as exc:
                report(self._errors, "connect", exc)
            finally:
                self._link = None
                self._inflight.clear()
                await link.close()
            await backoff.wait(self._stop)

    def _attach(self, link: MqttLink) -> None:
        """A new connection publishes again from the oldest unacknowledged batch."""
        self._link = link
        self._cursor = 0
        self._more = True
        self._inflight.clear()

    async def _serve(self, link: MqttLink) -> None:
        """Birth, republish what the buffer holds, then keep going until the connection drops
        or the agent stops."""
        self._attach(link)
        self.stats.connects += 1
        self._errors.succeeded()
        self._buffer_drops.succeeded()
        log.info(
            "mqtt: connected to %s as %s (session %s, %d batches to republish)",
            self.config.mqtt.url,
            self.client_id,
            self.session_id,
            len(self.buffer),
        )
        link.publish(self.status_topic, encode(self._status(GatewayState.BIRTH)), retain=True)
        self._pump()
        # Everything that ends this connection (loss, stop) sets _wake; all of it runs on the
        # loop thread, so nothing can slip in between the checks and the clear().
        while not self._stop.is_set() and not link.disconnected.is_set():
            self._wake.clear()
            await self._wake.wait()

    async def _say_goodbye(self, link: MqttLink) -> None:
        """On a clean stop: wait for outstanding acks, then publish death (retained) ourselves,
        since a clean DISCONNECT makes the broker discard the last will."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.shutdown_timeout_s
        while self._inflight and link.is_connected and loop.time() < deadline:
            self._flushed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(deadline - loop.time()):
                    await self._flushed.wait()
        if not link.is_connected:
            return
        ack: asyncio.Future[bool] = loop.create_future()
        self._status_acks[
            link.publish(self.status_topic, self._death(planned=True), retain=True)
        ] = ack
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.5, deadline - loop.time())):
                await ack
        self._status_acks.clear()

    def _death(self, *, planned: bool = False) -> bytes:
        return encode(self._status(GatewayState.DEATH, planned=planned))
