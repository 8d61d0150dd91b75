"""The parts of `plantmesh agent check-config --connect` that need no server: the table, the
progress lines, how types, addresses, Modbus exception answers and OPC UA statuses are shown, and
the command line around it (the real-server paths: tests/integration/test_agent_check_connect.py).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from asyncua.ua.status_codes import StatusCodes

from edge_agent.check_connect import Progress, Row, format_table, format_value
from edge_agent.check_connect_modbus import connect_problem, exception_problem, spec_type
from edge_agent.check_connect_opcua import status_problem
from edge_agent.sources.modbus import ModbusExceptionError
from edge_agent.sources.modbus_plan import ReadRequest
from plantmesh.cli import main
from plantmesh.modbus_profile import DataType, Order, RegisterSpec, Table
from tests.support.ports import free_port


def test_the_table_lines_up_every_column_and_marks_rows_without_a_problem() -> None:
    rows = [
        Row("plc", "press-01/temp", "ns=2;s=T", "Double", "21.5 degC", "good"),
        Row("modbus-long-name", "pump/far", "unit 1 holding 9000", problem="illegal data address"),
    ]
    lines = format_table(rows).splitlines()
    assert lines[0].split() == ["SOURCE", "NAME", "ADDRESS", "TYPE", "VALUE", "QUALITY", "PROBLEM"]
    starts = [lines[0].index(word) for word in ("NAME", "PROBLEM")]
    assert all(line[starts[0] - 2 : starts[0]] == "  " for line in lines)
    assert lines[1][starts[1] :] == "-"
    assert lines[2][starts[1] :] == "illegal data address"


def test_values_are_short_and_carry_their_unit() -> None:
    assert format_value(21.123456789, "degC") == "21.1235 degC"
    assert format_value(True) == "true"
    assert format_value(3.0, "1") == "3"  # "1" is a plain number, not a unit worth printing
    assert format_value("x" * 100).endswith("...")
    assert len(format_value("x" * 100)) == 40


def test_progress_shows_tenths_of_a_large_check_only() -> None:
    stream = io.StringIO()
    progress = Progress(200, stream, min_total=100)
    for _ in range(200):
        progress.advance()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "checked 20/200 signals"
    assert lines[-1] == "checked 200/200 signals"
    assert len(lines) == 10
    quiet = io.StringIO()
    small = Progress(10, quiet, min_total=100)
    small.advance(10)
    assert quiet.getvalue() == ""


def test_progress_counts_variables_a_browse_root_adds() -> None:
    stream = io.StringIO()
    progress = Progress(0, stream, min_total=100)
    progress.add_total(100)
    progress.advance(100)
    assert stream.getvalue().splitlines()[-1] == "checked 100/100 signals"


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        (RegisterSpec(signal="s", address=0, type=DataType.FLOAT32), "float32 ABCD"),
        (
            RegisterSpec(signal="s", address=0, type=DataType.FLOAT32, word_order=Order.LITTLE),
            "float32 CDAB",
        ),
        (
            RegisterSpec(signal="s", address=0, type=DataType.INT16, byte_order=Order.LITTLE),
            "int16 BA",
        ),
        (RegisterSpec(signal="s", address=0, type=DataType.UINT16), "uint16"),
        (RegisterSpec(signal="s", table=Table.COIL, address=0, type=DataType.BOOL), "bool"),
    ],
)
def test_register_types_show_their_byte_and_word_order(spec: RegisterSpec, shown: str) -> None:
    assert spec_type(spec) == shown


def test_exception_answers_are_named_by_their_meaning() -> None:
    spec = RegisterSpec(signal="far", address=9000)
    request = ReadRequest(Table.HOLDING, 9000, 1, (spec,), (0,))
    assert exception_problem(ModbusExceptionError(2, request)) == (
        "illegal data address (exception code 2)"
    )
    assert (
        exception_problem(ModbusExceptionError(9, request)) == "exception answer (exception code 9)"
    )


def test_opcua_statuses_say_what_is_wrong() -> None:
    assert status_problem(StatusCodes.BadNodeIdUnknown) == "node does not exist (BadNodeIdUnknown)"
    assert status_problem(StatusCodes.BadSensorFailure) == "read failed (BadSensorFailure)"


async def test_a_closed_port_is_connection_refused() -> None:
    assert await connect_problem("127.0.0.1", free_port(), 1.0) == "connection refused"


def _agent_config(tmp_path: Path) -> Path:
    path = tmp_path / "agent.yaml"
    source = {"type": "opcua", "name": "plc", "endpoint": "opc.tcp://127.0.0.1:4840",
              "nodes": [{"node_id": "ns=2;s=Nope", "area": "a", "line": "l", "machine": "m",
                         "signal": "s"}]}  # fmt: skip
    path.write_text(yaml.safe_dump({"gateway_id": "gw", "plant": "p", "sources": [source]}))
    return path


def test_the_config_is_given_once_and_the_timeout_is_positive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(_agent_config(tmp_path))
    assert main(["agent", "check-config", path, "--config", path]) == 2
    assert "give the config file once" in capsys.readouterr().err
    assert main(["agent", "check-config", path, "--connect", "--timeout", "0"]) == 2
    assert "--timeout must be more than 0" in capsys.readouterr().err
    assert main(["agent", "check-config", path]) == 0  # offline: the file is valid
    assert "SOURCE" not in capsys.readouterr().out
