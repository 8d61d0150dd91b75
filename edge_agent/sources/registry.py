"""The explicit map from a config's `type` to the source implementation."""

from __future__ import annotations

from edge_agent.config import ModbusSourceConfig, OpcUaSourceConfig, SourceConfig
from edge_agent.sources import ReadingSink, Source
from edge_agent.sources.modbus import ModbusSource
from edge_agent.sources.opcua import OpcUaSource


def build_source(config: SourceConfig, plant: str, sink: ReadingSink) -> Source:
    if isinstance(config, OpcUaSourceConfig):
        return OpcUaSource(config, plant, sink)
    if isinstance(config, ModbusSourceConfig):
        return ModbusSource(config, plant, sink)
    raise TypeError(f"no source implementation for {type(config).__name__}")
