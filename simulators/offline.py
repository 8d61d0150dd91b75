"""A simulated network's readings without servers, agents or brokers: each tick, what the demo's
edge agents would publish, as ReadingBatches, with the run's ground truth. For replaying alerting
rules over hours of scenario in seconds (detection quality, regression tests); the live demo
remains the end-to-end measure.

Agent behaviour emulated per protocol, as the demo's agents are configured: OPC UA subscriptions
report changes only (with the server's source timestamp, skew included); Modbus is polled every
tick and every value published with the poll time (an exception answer publishes the signal Bad
with its last value). A server that is down or silent publishes nothing. One batch per machine
and tick, from gateway `gw-<plant>` in one session, sequence numbers per gateway."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from plantmesh.contracts import AssetPath, Quality, Reading, ReadingBatch
from simulators.engine import SimMachine, SimulationEngine, TickFrame
from simulators.network import NetworkConfig, Protocol
from simulators.scenario import ScenarioConfig
from simulators.truth import TruthRecord

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class OfflineBatch:
    """A batch with the machine class the writer would stamp on it."""

    batch: ReadingBatch
    machine_class: str


@dataclass
class OfflineRun:
    batches: list[OfflineBatch]
    truth: list[TruthRecord]


def _asset(machine: SimMachine) -> AssetPath:
    c = machine.config
    return AssetPath(plant=machine.plant, area=c.area, line=c.line, machine=machine.id)


def _modbus_readings(machine: SimMachine, frame: TickFrame) -> list[Reading]:
    asset = _asset(machine)
    return [
        Reading(
            asset=asset,
            signal=name,
            value=value,
            unit=machine.spec(name).unit,
            quality=Quality(machine.quality.get(name, Quality.GOOD).value),
            source_ts=frame.timestamp,
            gateway_ts=frame.timestamp,
        )
        for name, value in machine.served.items()
    ]


def _frame_batches(
    frame: TickFrame, engine: SimulationEngine, seqs: dict[str, int]
) -> Iterator[OfflineBatch]:
    changed: dict[str, list[Reading]] = {}
    for update in frame.updates:
        machine = update.machine
        if machine.protocol is Protocol.OPCUA:
            changed.setdefault(machine.path, []).append(
                Reading(
                    asset=_asset(machine),
                    signal=update.signal.name,
                    value=update.value,
                    unit=update.signal.unit,
                    quality=Quality(update.quality.value),
                    source_ts=update.source_ts or frame.timestamp,
                    gateway_ts=frame.timestamp,
                )
            )
    for machine in engine.machines:
        key = (machine.plant, machine.protocol)
        if key in frame.down or key in frame.silent or not machine.online:
            continue
        if machine.protocol is Protocol.MODBUS:
            readings = _modbus_readings(machine, frame)
        else:
            readings = changed.get(machine.path, [])
        if not readings:
            continue
        gateway = f"gw-{machine.plant}"
        batch = ReadingBatch(
            gateway_id=gateway,
            session_id="offline",
            seq=seqs.get(gateway, 0),
            sent_at=frame.timestamp,
            readings=readings,
        )
        seqs[gateway] = batch.seq + 1
        yield OfflineBatch(batch, machine.config.machine_class)


def offline_run(
    network: NetworkConfig,
    scenario: ScenarioConfig | None,
    seconds: float,
    *,
    seed: int | None = None,
    start: datetime = START,
) -> OfflineRun:
    """`seconds` of scenario time from `start` (speed 1)."""
    engine = SimulationEngine(
        network, seed=seed, scenario=scenario, start=start, clock=lambda: start
    )
    seqs: dict[str, int] = {}
    batches: list[OfflineBatch] = []
    truth: list[TruthRecord] = []
    for _ in range(int(seconds / network.tick_s)):
        frame = engine.next_tick()
        truth.extend(frame.truth)
        batches.extend(_frame_batches(frame, engine, seqs))
    return OfflineRun(batches, truth)
