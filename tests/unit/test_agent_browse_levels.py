"""The `levels` mapping of an OPC UA browse root: each of area, line and machine comes from
exactly one folder level or is fixed on the root; errors name the key. Walking real servers
with it is tests/integration/test_agent_browse_levels.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import BrowseRootConfig, OpcUaSourceConfig, load_agent_config
from plantmesh.config import ConfigError


def test_default_is_area_line_machine() -> None:
    root = BrowseRootConfig.model_validate({"root": "plant-a"})
    assert root.levels == ["area", "line", "machine"]
    assert (root.area, root.line, root.machine) == (None, None, None)


def test_other_layouts_load_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "gateway_id: gw\nplant: plant-a\nsources:\n"
        "  - type: opcua\n    name: plc\n    endpoint: opc.tcp://plc:4840\n    browse:\n"
        "      - {root: PLC1/DataBlocks, levels: [machine, skip], area: pressing, line: line1}\n"
        "      - {root: Flat, levels: [], area: utilities, line: main, machine: boiler-01}\n"
        "      - {root: Site, levels: [skip, area, skip, line, machine]}\n"
    )
    source = load_agent_config(path).sources[0]
    assert isinstance(source, OpcUaSourceConfig)
    blocks, flat, deep = source.browse
    assert (blocks.levels, blocks.area, blocks.line) == (["machine", "skip"], "pressing", "line1")
    assert (flat.levels, flat.machine) == ([], "boiler-01")
    assert deep.levels == ["skip", "area", "skip", "line", "machine"]


@pytest.mark.parametrize(
    ("root", "message"),
    [
        ("{root: a, levels: [skip, machine]}", "no level is the area"),
        ("{root: a, levels: [area, line, machine], line: l}", "line is both a level and fixed"),
        ("{root: a, levels: [area, line, machine, machine]}", "names machine 2 times"),
        ("{root: a, levels: [area, line, station]}", "'area', 'line', 'machine' or 'skip'"),
        ("{root: a, levels: [], area: a, line: l, machine: 'bad name'}", "machine"),
    ],
)
def test_mappings_that_cannot_name_an_asset_are_refused(
    tmp_path: Path, root: str, message: str
) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "gateway_id: gw\nplant: plant-a\nsources:\n"
        f"  - {{type: opcua, name: plc, endpoint: 'opc.tcp://plc:4840', browse: [{root}]}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_agent_config(path)
    text = str(caught.value)
    assert "sources[0].browse[0]" in text
    assert message in text
