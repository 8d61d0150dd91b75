"""Scale-out furniture: a steady load of several gateways on MQTT with scripted excursions, and
what a Kafka consumer group looks like from outside (who holds which partitions, how far behind
the group is)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError
from paho.mqtt.enums import CallbackAPIVersion

from plantmesh.connections import MqttConnection
from plantmesh.contracts import AssetPath, Reading, ReadingBatch, encode
from plantmesh.mqtt_auth import apply_connection
from plantmesh.topics import Topics
from tests.support.kafka import kafka_options

SIGNALS = ("temp", "pressure", "speed", "current", "flow")
NORMAL_TEMP = 60.0
HOT_TEMP = 97.0


@dataclass
class SteadyLoad:
    """`gateways` plants with `machines` machines each; every tick each machine's gateway
    publishes one batch of SIGNALS (QoS 1, one sequence per gateway). Event time is one second
    a tick, from a fixed start, whatever the wall clock does; machine k runs hot (`temp` at
    HOT_TEMP) for `hot_ticks` ticks from tick `first_hot + k * hot_every`."""

    mqtt_url: str
    namespace: str
    gateways: int
    machines: int
    ticks: int
    tick_s: float
    first_hot: int = 10
    hot_every: int = 6
    hot_ticks: int = 8
    start: datetime = field(
        default_factory=lambda: datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    )
    published_ticks: int = 0
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def assets(self) -> list[AssetPath]:
        return [
            AssetPath(plant=f"p{g}", area="a", line="l", machine=f"m{k}")
            for g in range(self.gateways)
            for k in range(self.machines)
        ]

    def hot(self, index: int, tick: int) -> bool:
        first = self.first_hot + index * self.hot_every
        return first <= tick < first + self.hot_ticks

    @property
    def readings(self) -> int:
        return self.gateways * self.machines * self.ticks * len(SIGNALS)

    @property
    def batches_per_gateway(self) -> int:
        return self.machines * self.ticks

    def start_publishing(self) -> None:
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    @property
    def done(self) -> bool:
        return self.published_ticks == self.ticks

    def _run(self) -> None:
        try:
            self._publish_all()
        except BaseException as exc:  # seen by the test through `error`
            self.error = exc

    def _publish_all(self) -> None:
        topics = Topics(self.namespace)
        conn = MqttConnection(url=self.mqtt_url)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.max_inflight_messages_set(200)
        apply_connection(client, conn)
        client.connect(conn.host, conn.port)
        client.loop_start()
        assets = self.assets()
        seqs = [0] * self.gateways
        try:
            began = time.monotonic()
            for tick in range(self.ticks):
                ts = self.start + timedelta(seconds=tick)
                sent = []
                for index, asset in enumerate(assets):
                    gateway = index // self.machines
                    batch = ReadingBatch(
                        gateway_id=f"gw-{asset.plant}",
                        session_id="s1",
                        seq=seqs[gateway],
                        sent_at=ts,
                        readings=self._readings(asset, index, tick, ts),
                    )
                    seqs[gateway] += 1
                    topic = topics.mqtt_readings(asset)
                    sent.append(client.publish(topic, encode(batch), qos=1))
                for info in sent:
                    info.wait_for_publish(30)
                    if not info.is_published():
                        raise TimeoutError(f"tick {tick}: the broker did not acknowledge")
                self.published_ticks = tick + 1
                # Pace the load (wall time); not a synchronisation.
                if self._stop.wait(max(0.0, began + (tick + 1) * self.tick_s - time.monotonic())):
                    return
        finally:
            client.disconnect()
            client.loop_stop()

    def _readings(self, asset: AssetPath, index: int, tick: int, ts: datetime) -> list[Reading]:
        temp = HOT_TEMP if self.hot(index, tick) else NORMAL_TEMP + (tick % 5) * 0.1
        values = {"temp": temp, "pressure": 5.0 + index * 0.01, "speed": float(tick % 100)}
        values |= {"current": 10.0 + (tick % 7), "flow": 1.0 + index}
        return [
            Reading(asset=asset, signal=name, value=values[name], source_ts=ts, gateway_ts=ts)
            for name in SIGNALS
        ]


async def group_members(bootstrap: str, group: str) -> dict[str, set[tuple[str, int]]]:
    """The members of a consumer group now and the (topic, partition)s each holds (empty while
    the group rebalances)."""
    admin = AIOKafkaAdminClient(**kafka_options(bootstrap))
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
    except KafkaError as exc:  # no coordinator yet, or it moves: ask again
        if not exc.retriable:
            raise
        return {}
    finally:
        await admin.close()
    [described] = response.groups
    error, _group, state, *_rest, members = described[:6]
    if error or state != "Stable":
        return {}
    held: dict[str, set[tuple[str, int]]] = {}
    for member in members:
        member_id, assignment = member[0], member[-1]
        parts = ConsumerProtocolMemberAssignment.decode(assignment) if assignment else None
        held[member_id] = (
            {(tp.topic, tp.partition) for tp in parts.partitions()} if parts else set()
        )
    return held
