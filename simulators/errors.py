"""Typed failures of the simulator."""

from __future__ import annotations


class SimulatorError(Exception):
    """The simulation cannot serve (a port taken, a server that fails to start)."""


class OpcUaServerError(SimulatorError):
    """An OPC UA server could not be set up or could not listen."""


class ModbusServerError(SimulatorError):
    """A Modbus server could not listen."""
