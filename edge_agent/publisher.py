"""The publisher: collects readings, batches them per machine, and gets every batch acknowledged
by the broker (QoS 1), across reconnects.

Path of a reading: `submit` (never blocks a source; counts drops when the queue is full) ->
bounded queue -> every `publish_interval_s` one ReadingBatch per machine -> BatchBuffer ->
MQTT. A batch leaves the buffer only when its PUBACK arrives; after a reconnect every batch still
in the buffer is published again, oldest first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from edge_agent.batching import Batcher
from edge_agent.buffer import BatchBuffer, BufferedBatch
from edge_agent.config import AgentConfig
from edge_agent.errors import PublishError, report
from edge_agent.mqtt_link import MqttLink
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


@dataclass
class PublisherStats:
    readings_in: int = 0
    dropped_readings: int = 0
    """Readings refused because the queue was full (the broker could not keep up)."""
    batches_made: int = 0
    batches_acked: int = 0
    batches_rejected: int = 0
    """Batches the broker answered with a failure reason code (e.g. not authorized)."""
    dropped_batches: int = 0
    """Batches pushed out of a full buffer, or still unsent when the agent stopped."""
    connects: int = 0

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)


class Publisher:
    def __init__(self, config: AgentConfig, session_id: str, buffer: BatchBuffer) -> None:
        self.config = config
        self.session_id = session_id
        self.buffer = buffer
        self.topics = Topics(config.namespace)
        self.status_topic = self.topics.mqtt_gateway_status(config.plant, config.gateway_id)
        self.stats = PublisherStats()
        self.batcher = Batcher(config.gateway_id, session_id, config.max_readings_per_batch)
        self._queue: asyncio.Queue[Reading] = asyncio.Queue(maxsize=config.queue_size)
        self._link: MqttLink | None = None
        self._inflight: dict[int, tuple[str, int]] = {}
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
        try:
            self._queue.put_nowait(reading)
        except asyncio.QueueFull:
            self.stats.dropped_readings += 1
            report(self._queue_drops, "full", f"{self._queue.maxsize} readings waiting; dropping")
            return
        self.stats.readings_in += 1

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.is_connected

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
        if len(self.buffer):
            self.stats.dropped_batches += len(self.buffer)
            log.warning(
                "stopping with %d unacknowledged batches (in-memory buffer: they are lost)",
                len(self.buffer),
            )

    def health(self, sources: list[SourceHealth]) -> GatewayHealth:
        return GatewayHealth(
            buffer_depth=len(self.buffer),
            oldest_unsent_age_s=self.buffer.oldest_age_s(),
            dropped_batches=self.stats.dropped_batches,
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
        """Turn every queued reading into batches now; returns how many batches were made."""
        readings: list[Reading] = []
        while True:
            try:
                readings.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        if self.stats.dropped_readings == self._dropped_before:
            self._queue_drops.succeeded()
        self._dropped_before = self.stats.dropped_readings
        if not readings:
            return 0
        batches = self.batcher.make_batches(readings, datetime.now(UTC))
        for batch in batches:
            buffered = BufferedBatch(
                session_id=self.session_id,
                seq=batch.seq,
                topic=self.topics.mqtt_readings(batch.readings[0].asset),
                payload=encode(batch),
            )
            evicted = self.buffer.put(buffered)
            if evicted:
                self.stats.dropped_batches += len(evicted)
                report(self._buffer_drops, "full", "dropping the oldest unacknowledged batches")
            self._send(buffered)
        self.stats.batches_made += len(batches)
        return len(batches)

    async def _batch_loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.config.publish_interval_s)
            self.flush()

    # --- the connection ---------------------------------------------------------------------
    def _send(self, batch: BufferedBatch) -> None:
        link = self._link
        if link is None or not link.is_connected:
            return  # stays in the buffer; published on (re)connect
        self._inflight[link.publish(batch.topic, batch.payload)] = batch.key

    def _on_ack(self, link: MqttLink, mid: int, accepted: bool) -> None:
        if link is not self._link:
            return  # an old connection's late ack: its batches are republished anyway
        waiter = self._status_acks.pop(mid, None)
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(accepted)
            return
        key = self._inflight.pop(mid, None)
        if key is None:
            return
        held = self.buffer.ack(key)  # False: already pushed out of a full buffer
        if held and accepted:
            self.stats.batches_acked += 1
        elif held:
            # Republishing would be refused again (e.g. not authorized): drop it, counted.
            self.stats.batches_rejected += 1
            self.stats.dropped_batches += 1
            report(self._rejections, "broker", "the broker rejected a batch (PUBACK failure)")
        if not self._inflight:
            self._flushed.set()

    def _status(self, state: GatewayState, health: GatewayHealth | None = None) -> GatewayStatus:
        return GatewayStatus(
            gateway_id=self.config.gateway_id,
            plant=self.config.plant,
            session_id=self.session_id,
            state=state,
            at=datetime.now(UTC),
            agent_version=__version__,
            health=health,
        )

    async def _connection_loop(self) -> None:
        backoff = Backoff(0.5, 30.0)
        while not self._stop.is_set():
            link = MqttLink(
                self.config.mqtt,
                self.client_id,
                will=(self.status_topic, self._death()),
                on_ack=self._on_ack,
                on_lost=self._wake.set,
            )
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

    async def _serve(self, link: MqttLink) -> None:
        """Birth, republish what the buffer holds, then keep going until the connection drops
        or the agent stops."""
        self._link = link
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
        for batch in self.buffer.unacked():
            self._send(batch)
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
                await asyncio.wait_for(self._flushed.wait(), deadline - loop.time())
        if not link.is_connected:
            return
        ack: asyncio.Future[bool] = loop.create_future()
        self._status_acks[link.publish(self.status_topic, self._death(), retain=True)] = ack
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ack, max(0.5, deadline - loop.time()))
        self._status_acks.clear()

    def _death(self) -> bytes:
        return encode(self._status(GatewayState.DEATH))
