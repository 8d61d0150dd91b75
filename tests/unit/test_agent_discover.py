"""`plantmesh agent discover`: the register table, --pick parsing, the config fragments (loaded
through the agent's own config loader) and the command line's refusals. Talking to real servers
is in tests/integration/test_agent_discover_*.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from asyncua import ua
from asyncua.ua.status_codes import StatusCodes

from edge_agent.config import AgentConfig, ModbusSourceConfig, OpcUaSourceConfig, load_agent_config
from edge_agent.discover.fragment import (
    AssetNames,
    FragmentError,
    modbus_fragment,
    opcua_fragment,
    picked_variables,
    portable_node_id,
)
from edge_agent.discover.modbus_table import (
    NUMERIC,
    format_range,
    parse_pick,
    parse_types,
    picked_value,
    spec,
)
from edge_agent.discover.opcua_text import format_tree, format_value
from edge_agent.discover.opcua_tree import OBJECTS, FoundNode, Tree
from plantmesh.cli import main
from plantmesh.modbus_profile import DataType, Order, Table, encode_value

HEADER = "gateway_id: gw-1\nplant: plant-a\n"


def nid(text: str) -> ua.NodeId:
    return ua.NodeId.from_string(text)


def load_fragment(tmp_path: Path, text: str) -> AgentConfig:
    """The fragment as the `sources:` of an agent config file, through the agent's loader."""
    path = tmp_path / "agent.yaml"
    path.write_text(HEADER + text)
    return load_agent_config(path)


def table_cells(text: str) -> dict[tuple[int, str], dict[str, str]]:
    """{(address, order): {column: cell}} of a register table."""
    lines = text.splitlines()
    columns = lines[1].split()[3:]
    cells: dict[tuple[int, str], dict[str, str]] = {}
    address = -1
    for line in lines[2:]:
        tokens = line.split()
        if tokens[0].isdigit():
            address, tokens = int(tokens[0]), tokens[2:]
        cells[(address, tokens[0])] = dict(zip(columns, tokens[1:], strict=True))
    return cells


def test_table_shows_each_address_in_every_order_and_marks_what_does_not_fit() -> None:
    values = [7, *encode_value(spec(DataType.FLOAT32, "CDAB"), 42.5)]
    text = format_range(values, 10, Table.HOLDING, 1)
    assert text.splitlines()[0].startswith("holding registers 10..12 of unit 1")
    assert text.splitlines()[1].split() == ["addr", "raw", "order", *(t.value for t in NUMERIC)]
    cells = table_cells(text)
    assert set(cells) == {(a, o) for a in (10, 11, 12) for o in ("ABCD", "CDAB", "BADC", "DCBA")}
    assert cells[(11, "CDAB")]["float32"] == "42.5"
    assert cells[(11, "ABCD")]["float32"] != "42.5"
    assert cells[(10, "ABCD")]["int16"] == "7"
    assert cells[(10, "BADC")]["int16"] == "1792"
    # address 12 is the last one: 32-bit and 64-bit values do not fit; 64-bit nowhere here
    assert cells[(12, "ABCD")]["int32"] == "-"
    assert cells[(12, "ABCD")]["uint16"] == "16938"
    assert {cells[(a, "DCBA")]["float64"] for a in (10, 11, 12)} == {"-"}


def test_types_narrow_the_columns_and_bits_are_listed_plainly() -> None:
    text = format_range([0x3F80, 0], 0, Table.INPUT, 2, parse_types("float32, uint16"))
    assert text.splitlines()[1].split() == ["addr", "raw", "order", "float32", "uint16"]
    assert text.splitlines()[2].split() == ["0", "0x3F80", "ABCD", "1", "16256"]
    bits = format_range([1, 0], 5, Table.COIL, 1).splitlines()
    assert bits[1:] == ["5      1", "6      0"]
    for bad, message in (("int33", "unknown type 'int33'"), ("bool", "coils")):
        with pytest.raises(ValueError, match=message):
            parse_types(bad)


def test_pick_parsing() -> None:
    level = parse_pick("2:float32:cdab:level:m", Table.HOLDING)
    assert (level.signal, level.address, level.type, level.unit) == ("level", 2, "float32", "m")
    assert (level.byte_order, level.word_order) == (Order.BIG, Order.LITTLE)
    speed = parse_pick("0:uint16:speed", Table.INPUT)
    assert (speed.signal, speed.table, speed.byte_order, speed.unit) == (
        "speed",
        Table.INPUT,
        Order.BIG,
        None,
    )
    assert parse_pick("7:int32", Table.HOLDING).signal == "holding_7_int32"
    assert parse_pick("3:bool:running", Table.COIL).type == DataType.BOOL
    for bad, message in (
        ("x:int16", "ADDR:TYPE"),
        ("1", "ADDR:TYPE"),
        ("1:int17", "unknown type 'int17'"),
        ("1:bool", "does not fit table holding"),
        ("1:int16:bad name", "signal: String should match"),
        ("70000:int16", "address: Input should be less than or equal to 65535"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_pick(bad, Table.HOLDING)


def test_picked_value_is_decoded_and_must_lie_in_the_range_read() -> None:
    values = [0, *encode_value(spec(DataType.FLOAT32, "BADC"), -3.25)]
    assert picked_value(parse_pick("1:float32:BADC", Table.HOLDING), values, 0) == -3.25
    with pytest.raises(ValueError, match=r"outside the range read \(0..2\)"):
        picked_value(parse_pick("2:float32", Table.HOLDING), values, 0)


def test_modbus_fragment_loads_as_an_agent_config(tmp_path: Path) -> None:
    picks = [
        parse_pick("2:float32:CDAB:level:m", Table.HOLDING),
        parse_pick("0:int16:BADC:temp", Table.HOLDING),
    ]
    text = modbus_fragment("10.0.0.5", 5020, "pumps", 3, picks, AssetNames(area="utilities"))
    assert text.startswith("# plantmesh agent discover: picked on 10.0.0.5:5020.")
    config = load_fragment(tmp_path, text)
    source = config.sources[0]
    assert isinstance(source, ModbusSourceConfig)
    assert (source.name, source.host, source.port) == ("pumps", "10.0.0.5", 5020)
    device = source.devices[0]
    assert (device.unit_id, device.area, device.line, device.machine) == (
        3,
        "utilities",
        "line",
        "unit-3",
    )
    level, temp = device.device_profile.registers
    assert level == picks[0]
    assert (temp.type, temp.byte_order, temp.signal) == (DataType.INT16, Order.LITTLE, "temp")


def plc_tree() -> Tree:
    """Objects/plant-x/stamping/line1/press-01/{temp, temp (a second one), state}."""
    objects = FoundNode(OBJECTS, "Objects", ua.NodeClass.Object)
    parent = objects
    for name in ("plant-x", "stamping", "line1", "press 01"):
        child = FoundNode(nid(f"ns=2;s={name}"), name, ua.NodeClass.Object, parent)
        parent.children.append(child)
        parent = child
    for i, (name, unit) in enumerate((("temp", "degC"), ("temp", None), ("state", None))):
        variable = FoundNode(nid(f"ns=2;i={i}"), name, ua.NodeClass.Variable, parent, unit=unit)
        variable.data_type = "Double"
        variable.value = ua.DataValue(ua.Variant(20.5 + i))
        parent.children.append(variable)
    return Tree(objects, 8, 3, 5000, False, ["http://opcfoundation.org/UA/", "urn:x", "urn:plc"])


def test_opcua_fragment_from_picks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = plc_tree()
    source = OpcUaSourceConfig.model_validate(
        {
            "type": "opcua",
            "name": "x",
            "endpoint": "opc.tcp://plc:4840",
            "security": {"policy": "Basic256Sha256", "certificate": "/c.der", "private_key": "/k"},
            "username": "operator",
            "password": "s3cret",
            "browse": [{"root": "discover"}],
        }
    )
    # the machine (all its variables) and one of them again: listed once
    picks = [nid("ns=2;s=press 01"), nid("ns=2;i=0")]
    text = opcua_fragment(source, "press-plc", tree, picks, AssetNames(line="main"))
    assert "s3cret" not in text
    monkeypatch.setenv("OPCUA_PASSWORD", "from-env")
    config = load_fragment(tmp_path, text)
    opc = config.sources[0]
    assert isinstance(opc, OpcUaSourceConfig)
    assert opc.password is not None
    assert opc.password.get_secret_value() == "from-env"
    assert (opc.security.policy, opc.security.certificate) == ("Basic256Sha256", "/c.der")
    entries = [(n.node_id, n.area, n.line, n.machine, n.signal, n.unit) for n in opc.nodes]
    assert entries == [
        ("nsu=urn:plc;i=0", "stamping", "main", "press_01", "temp", "degC"),
        ("nsu=urn:plc;i=1", "stamping", "main", "press_01", "temp_2", None),
        ("nsu=urn:plc;i=2", "stamping", "main", "press_01", "state", None),
    ]
    raw = yaml.safe_load(text)["sources"][0]
    assert raw["password"] == "${OPCUA_PASSWORD}"


def test_picks_that_cannot_become_entries() -> None:
    tree = plc_tree()
    with pytest.raises(FragmentError, match="not in the browsed tree"):
        picked_variables(tree, [nid("ns=2;s=elsewhere")])
    with pytest.raises(FragmentError, match="has no variables below it"):
        picked_variables(tree, [nid("ns=2;s=plant-x")])


def test_node_ids_name_their_namespace_by_uri() -> None:
    namespaces = ["http://opcfoundation.org/UA/", "urn:a"]
    assert portable_node_id(nid("ns=1;s=a;b"), namespaces) == "nsu=urn:a;s=a;b"
    assert portable_node_id(nid("i=2253"), namespaces) == "i=2253"
    assert portable_node_id(nid("ns=7;i=5"), namespaces) == "ns=7;i=5"  # unknown index: as is


def test_tree_text() -> None:
    text = format_tree(plc_tree()).splitlines()
    assert text[0] == "Objects  i=85  [Object]"
    assert text[5] == "          temp  ns=2;i=0  Double = 20.5 degC  (Good)"
    assert text[-1] == "8 nodes, 3 variables"
    bad = ua.DataValue(StatusCode=ua.StatusCode(ua.UInt32(StatusCodes.BadSensorFailure)))
    assert format_value(bad) == ("-", "BadSensorFailure")
    assert format_value(ua.DataValue(ua.Variant(list(range(9)))))[0].endswith("(9 items)")
    assert format_value(ua.DataValue(ua.Variant("x" * 100)))[0].endswith("...")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["modbus", "h:502", "--pick", "0:int16"], "--pick needs --output"),
        (["modbus", "h:502", "--output", "f.yaml"], "--output needs at least one --pick"),
        (["modbus", "h:x"], "expected HOST:PORT"),
        (["modbus", "h:502", "--start", "65530", "--count", "10"], "within wire addresses"),
        (["modbus", "h:502", "--pick", "0:int99", "--output", "-"], "unknown type"),
        (["opcua"], "give an endpoint"),
        (["opcua", "http://plc"], "endpoint: Value error, expected opc.tcp://"),
        (["opcua", "opc.tcp://plc:4840", "--config", "a.yaml"], "either --config"),
        (["opcua", "opc.tcp://plc:4840", "--password-file", "p"], "needs --username"),
        (
            ["opcua", "opc.tcp://plc:4840", "--security-policy", "Basic256Sha256"],
            "needs `certificate` and `private_key`",
        ),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["agent", "discover", *args]) == 2
    assert message in capsys.readouterr().err
