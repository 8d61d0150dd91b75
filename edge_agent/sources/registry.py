"""The explicit map from a config's `type` to the source implementation."""

from __future__ import annotations

from edge_agent.config import ModbusSourceConfig, OpcUaSourceConfig, SourceConfig
from edge_agent.sources import ReadingSink, Source


def build_source(config: SourceConfig, plant: str, sink: ReadingSink) -> Source:
    # Imported on first use: asyncua alone is about 40 MB resident, which a gateway that only
    # polls Modbus (on a Raspberry Pi) should not pay, and pymodbus 12 MB the other way round.
    if isinstance(config, OpcUaSourceConfig):
        from edge_agent.sources.opcua import OpcUaSource

        return OpcUaSource(config, plant, sink)
    if isinstance(config, ModbusSourceConfig):
        from edge_agent.sources.modbus import ModbusSource

        return ModbusSource(config, plant, sink)
    raise TypeError(f"no source implementation for {type(config).__name__}")
