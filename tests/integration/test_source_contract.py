"""The Source contract (tests/support/source_contract.py) for each protocol, against a real
server: pymodbus' simulator for Modbus TCP, an asyncua server for OPC UA."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from edge_agent.sources.modbus import ModbusSource
from edge_agent.sources.opcua import OpcUaSource
from tests.support.modbus import HOLDING, ModbusPlc, device, modbus_plc, modbus_source
from tests.support.opcua import Plc, opc_source, opcua_plc
from tests.support.source_contract import SourceContract

pytestmark = pytest.mark.integration

PUMP_01 = "plant-a/utilities/line1/pump-01"
PRESS_01 = "plant-a/pressing/line1/press-01"
PRESS_02 = "plant-a/pressing/line1/press-02"


class TestModbusSource(SourceContract[ModbusPlc]):
    implementation = ModbusSource
    expected = {
        (PUMP_01, "speed"): (0.0, "rpm"),
        (PUMP_01, "level"): (0.0, "m"),
        (PUMP_01, "running"): (False, None),
    }
    changing = (PUMP_01, "speed")

    def serve(self, port: int) -> AbstractAsyncContextManager[ModbusPlc]:
        return modbus_plc(port=port)

    async def write(self, plc: ModbusPlc, value: float) -> None:
        await plc.set(1, HOLDING, 0, [int(value)])

    def source_config(self, port: int) -> dict[str, Any]:
        return {**modbus_source(port, [device(1, "pump-01")]), "reconnect_max_s": 0.5}


class TestOpcUaSource(SourceContract[Plc]):
    implementation = OpcUaSource
    expected = {
        (PRESS_01, "temperature"): (20.0, "degC"),
        (PRESS_01, "pressure"): (100.0, "bar"),
        (PRESS_01, "state"): ("idle", None),
        (PRESS_02, "temperature"): (30.0, "degC"),
    }
    changing = (PRESS_01, "pressure")

    def serve(self, port: int) -> AbstractAsyncContextManager[Plc]:
        return opcua_plc(port)

    async def write(self, plc: Plc, value: float) -> None:
        await plc.vars["press-01/pressure"].write_value(value)

    def source_config(self, port: int) -> dict[str, Any]:
        return opc_source(
            f"opc.tcp://127.0.0.1:{port}/plantmesh",
            keepalive_timeout_s=1,
            watchdog_interval_s=1,
            request_timeout_s=1,
            reconnect_max_s=0.5,
        )
