"""`plantmesh agent probe-modbus` against a real Modbus TCP server."""

from __future__ import annotations

import asyncio
import sys

import pytest

from plantmesh.modbus_profile import DataType, Order, RegisterSpec, encode_value
from tests.support.modbus import modbus_plc
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

INPUT = 4  # function code of input registers for the simulator's setValues


async def probe(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edge_agent",
        "probe-modbus",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_probe_prints_the_pair_in_all_four_layouts() -> None:
    cdab = RegisterSpec(signal="x", address=0, type=DataType.FLOAT32, word_order=Order.LITTLE)
    async with modbus_plc() as plc:
        await plc.set(1, INPUT, 6, encode_value(cdab, 42.5))
        code, out, err = await probe(f"127.0.0.1:{plc.port}", "1", "6", "--table", "input")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("input registers 6, 7: 0x0000 0x422A")
    rows = {line.split(" (")[0]: line for line in lines[2:]}
    assert set(rows) == {"ABCD", "CDAB", "BADC", "DCBA"}
    assert rows["CDAB"].split()[-3] == "42.5"  # the float column of the right layout
    assert "42.5" not in rows["ABCD"]


async def test_probe_reports_an_unreachable_device_and_fails() -> None:
    code, out, err = await probe(f"127.0.0.1:{free_port()}", "1", "0", "--timeout", "0.5")
    assert code == 1
    assert out == ""
    assert "probe-modbus: cannot connect" in err
