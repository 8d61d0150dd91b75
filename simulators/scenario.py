"""Scenario files: scripted events over simulated time for a given network.

    name: cross-plant-instability
    description: free text
    duration_s: 900            # optional: `sim run` stops after this much simulated time
    events:
      - {kind: oscillation, plant: plant-a, machine: mill-01, signal: vibration_rms,
         start_s: 120, duration_s: 600, period_s: 6, amplitude: 3.0}

Every event kind and its keys: simulators.event_config and deploy/demo/SCENARIOS.md. A scenario is
checked against its network when loaded, so an unknown plant, machine or signal is reported with
the file, the key and its line.
"""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from plantmesh.config import ConfigModel, load_config
from simulators.event_config import EventConfig
from simulators.network import NetworkConfig, event_problems, raise_problems

# The network a scenario being loaded must fit (pydantic validators take no arguments).
_network: ContextVar[NetworkConfig | None] = ContextVar("scenario_network", default=None)


class ScenarioConfig(ConfigModel):
    name: str = "scenario"
    description: str = ""
    duration_s: Annotated[float, Field(gt=0)] | None = None
    events: list[EventConfig] = []

    @model_validator(mode="after")
    def _fits_network(self) -> ScenarioConfig:
        network = _network.get()
        if network is not None:
            raise_problems("ScenarioConfig", event_problems(network, self.events, ()))
        return self


def load_scenario(path: Path | str, network: NetworkConfig) -> ScenarioConfig:
    """Read a scenario file and check that its events name what `network` has."""
    token = _network.set(network)
    try:
        return load_config(ScenarioConfig, path)
    finally:
        _network.reset(token)


def check_scenario(scenario: ScenarioConfig, network: NetworkConfig) -> ScenarioConfig:
    """The same check for a scenario built in code."""
    token = _network.set(network)
    try:
        return ScenarioConfig.model_validate(scenario.model_dump())
    finally:
        _network.reset(token)
