"""Reading batches straight from the simulator's machine models, no servers: a realistic,
deterministic multi-plant input for engine-level tests (every kind of scripted event, many
signals per machine, state signals that report on change)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from plantmesh.contracts import AssetPath, Quality, Reading, ReadingBatch
from simulators.engine import SimulationEngine
from simulators.network import load_network
from simulators.scenario import load_scenario

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo"
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Classified:
    """A batch with the machine class the writer would stamp on it."""

    batch: ReadingBatch
    machine_class: str


@cache
def simulated_batches(scenario: str = "fault-tour", seconds: int = 300) -> tuple[Classified, ...]:
    """One batch per machine and tick (1 s) for `seconds` of a demo scenario, gateway
    `gw-<plant>`, sequence numbers per gateway."""
    network = load_network(DEMO / "network.yaml")
    engine = SimulationEngine(
        network,
        scenario=load_scenario(DEMO / "scenarios" / f"{scenario}.yaml", network),
        start=START,
        clock=lambda: START,
    )
    seqs: dict[str, int] = defaultdict(int)
    out: list[Classified] = []
    for _ in range(int(seconds / network.tick_s)):
        frame = engine.next_tick()
        per_machine: dict[tuple[str, str], list[Reading]] = defaultdict(list)
        classes: dict[tuple[str, str], str] = {}
        for update in frame.updates:
            machine = update.machine
            asset = AssetPath(
                plant=machine.plant,
                area=machine.config.area,
                line=machine.config.line,
                machine=machine.id,
            )
            ts = update.source_ts or frame.timestamp
            key = (machine.plant, machine.id)
            classes[key] = machine.config.machine_class
            per_machine[key].append(
                Reading(
                    asset=asset,
                    signal=update.signal.name,
                    value=update.value,
                    unit=update.signal.unit,
                    quality=Quality(update.quality.value),
                    source_ts=ts,
                    gateway_ts=frame.timestamp,
                )
            )
        for (plant, machine_id), readings in per_machine.items():
            gateway = f"gw-{plant}"
            batch = ReadingBatch(
                gateway_id=gateway,
                session_id="session-1",
                seq=seqs[gateway],
                sent_at=frame.timestamp,
                readings=readings,
            )
            seqs[gateway] += 1
            out.append(Classified(batch, classes[(plant, machine_id)]))
    return tuple(out)
