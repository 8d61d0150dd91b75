"""`discover --into`: the picked source is appended to an agent config's `sources:` as text, so
the file's comments stay; a file it cannot extend that way is left untouched, with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edge_agent.discover.fragment import FragmentError
from edge_agent.discover.into import add_source, entry_of

ENTRY = {"type": "modbus", "name": "pump", "host": "127.0.0.1", "port": 5020, "devices": []}
HEAD = "# my gateway\ngateway_id: gw-1  # kept\nplant: p1\n"


def test_a_missing_sources_list_is_started_and_comments_stay(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(HEAD)
    add_source(config, ENTRY)
    text = config.read_text()
    assert text.startswith(HEAD)
    assert yaml.safe_load(text)["sources"] == [ENTRY]


def test_a_file_that_does_not_exist_is_made(tmp_path: Path) -> None:
    config = tmp_path / "new.yaml"
    add_source(config, ENTRY)
    assert yaml.safe_load(config.read_text()) == {"sources": [ENTRY]}


@pytest.mark.parametrize("listing", ["sources: []\n", "sources:\n- type: opcua\n  name: plc\n"])
def test_the_source_joins_the_list_at_its_indentation(tmp_path: Path, listing: str) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(HEAD + listing)
    before = yaml.safe_load(config.read_text())["sources"]
    add_source(config, ENTRY)
    assert yaml.safe_load(config.read_text())["sources"] == [*before, ENTRY]


def test_sources_not_last_or_a_taken_name_leave_the_file_alone(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    original = HEAD.replace("plant: p1\n", "sources:\n  - {type: modbus, name: pump}\nplant: p1\n")
    config.write_text(original)
    with pytest.raises(FragmentError, match="must be the last key"):
        add_source(config, {**ENTRY, "name": "other"})
    with pytest.raises(FragmentError, match="source named 'pump' already"):
        add_source(config, ENTRY)
    assert config.read_text() == original


def test_the_entry_of_a_fragment_is_its_one_source() -> None:
    fragment = "# picked\n" + yaml.safe_dump({"sources": [ENTRY]}, sort_keys=False)
    assert entry_of(fragment) == ENTRY
