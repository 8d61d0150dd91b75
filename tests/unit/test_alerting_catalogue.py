"""The issue-type catalogue: the shipped file is valid and complete, bad files say where."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import alerting
from alerting.catalogue import DEFAULT_CATALOGUE, OwnerRole, load_catalogue
from plantmesh.config import ConfigError
from plantmesh.contracts import Severity

# The issue types the mission names; rules and the demo rely on them.
EXPECTED = {
    "vibration-instability",
    "bearing-overtemperature",
    "process-drift",
    "frozen-sensor",
    "sensor-fault",
    "comms-loss",
    "data-gap",
    "state-flapping",
    "unplanned-stop",
    "pressure-loss",
}


def test_the_shipped_catalogue_names_every_issue_type_with_owner_and_response() -> None:
    catalogue = load_catalogue(DEFAULT_CATALOGUE)
    assert DEFAULT_CATALOGUE.parent.name == "alerting"
    assert set(catalogue.issue_types) >= EXPECTED
    assert catalogue.version
    for issue in catalogue.issue_types.values():
        assert issue.first_response.strip()
        assert isinstance(issue.owner, OwnerRole)
    assert catalogue.get("sensor-fault").owner is OwnerRole.INSTRUMENTATION
    assert catalogue.get("vibration-instability").priority is Severity.HIGH


def test_an_unknown_issue_type_lists_the_known_ones() -> None:
    catalogue = load_catalogue()
    with pytest.raises(KeyError, match=r"unknown issue type .vibration.*vibration-instability"):
        catalogue.get("vibration")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: '1'\nissue_types: {}\n", "issue_types"),
        (
            "version: '1'\nissue_types:\n  x:\n    title: t\n    description: d\n"
            "    priority: urgent\n    owner: maintenance\n    first_response: r\n",
            "issue_types.x.priority",
        ),
        (
            "version: '1'\nissue_types:\n  x:\n    title: t\n    description: d\n"
            "    priority: high\n    owner: janitor\n    first_response: r\n",
            "issue_types.x.owner",
        ),
        (
            "version: '1'\nissue_types:\n  'bad id':\n    title: t\n    description: d\n"
            "    priority: high\n    owner: operator\n    first_response: r\n",
            "issue_types.bad id",
        ),
        (
            "version: '1'\nissue_types:\n  x:\n    title: t\n    description: d\n"
            "    priority: high\n    owner: operator\n    first_response: r\n    colour: red\n",
            "issue_types.x.colour: unknown key",
        ),
    ],
)
def test_a_bad_catalogue_names_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "issue-types.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_catalogue(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_the_default_catalogue_ships_inside_the_package() -> None:
    # A wheel copies the package's *.yaml (pyproject package-data); in the source tree the file
    # is a link to the one under deploy/alerting, so there is one catalogue to edit.
    package_dir = Path(alerting.__file__).parent
    assert DEFAULT_CATALOGUE.parent == package_dir
    deployed = package_dir.parent / "deploy" / "alerting" / "issue-types.yaml"
    assert DEFAULT_CATALOGUE.read_bytes() == deployed.read_bytes()
    pyproject = tomllib.loads((package_dir.parent / "pyproject.toml").read_text())
    assert "*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["*"]
