"""Reading batches straight from the simulator's machine models, no servers (simulators.offline):
a realistic, deterministic multi-plant input for engine-level tests (every kind of scripted
event, many signals per machine, state signals that report on change)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from simulators.network import load_network
from simulators.offline import OfflineBatch, offline_run
from simulators.scenario import load_scenario

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo"
Classified = OfflineBatch


@cache
def simulated_batches(scenario: str = "fault-tour", seconds: int = 300) -> tuple[Classified, ...]:
    """`seconds` of a demo scenario, as the demo's agents would publish it."""
    network = load_network(DEMO / "network.yaml")
    loaded = load_scenario(DEMO / "scenarios" / f"{scenario}.yaml", network)
    return tuple(offline_run(network, loaded, seconds).batches)
