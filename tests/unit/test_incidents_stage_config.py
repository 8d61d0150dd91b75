"""The incident stage's configuration: the samples load (instrument problems never correlate,
every issue type named is in the catalogue), paths are relative to the file, and a bad file
says which key is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting.catalogue import DEFAULT_CATALOGUE, load_catalogue
from alerting.incidents.policy import load_correlation
from alerting.incidents.stage_config import IncidentsConfig, load_incidents_config
from plantmesh.config import ConfigError
from plantmesh.fleet import Fleet

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "alerting"


def test_the_samples_load() -> None:
    config = load_incidents_config(DEPLOY / "incidents.yaml")
    assert config.group_id == "plantmesh-incidents"
    assert config.rekey_group_id == "plantmesh-incidents-rekey"
    assert config.correlation == DEPLOY / "correlation.yaml"
    assert config.registry is not None
    assert len(Fleet.load(config.registry)) > 0
    policy = load_correlation(config.correlation)
    default = policy.for_issue("vibration-instability")
    assert default is not None
    assert (default.min_plants, default.min_machines) == (2, 2)
    assert (default.window_s, default.hold_s) == (1800, 600)
    for local in ("comms-loss", "data-gap", "frozen-sensor", "sensor-fault"):
        assert policy.for_issue(local) is None, local
    known = load_catalogue(DEFAULT_CATALOGUE).issue_types
    assert set(policy.issue_types) <= set(known)


def test_paths_are_relative_to_the_file_and_the_registry_is_optional(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "incidents.yaml"
    path.parent.mkdir()
    path.write_text("correlation: policies/correlation.yaml\n")
    config = load_incidents_config(path)
    assert config.correlation == path.parent / "policies" / "correlation.yaml"
    assert config.registry is None
    path.write_text("registry: ../registry.yaml\n")
    assert load_incidents_config(path).registry == path.parent / ".." / "registry.yaml"


def test_defaults_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_INCIDENTS_KAFKA", "127.0.0.1:39092")
    path = tmp_path / "incidents.yaml"
    path.write_text("kafka: {bootstrap: '${TEST_INCIDENTS_KAFKA}'}\nstart_from: latest\n")
    config = load_incidents_config(path)
    assert config.kafka.bootstrap == "127.0.0.1:39092"
    assert config.start_from == "latest"
    assert config.correlation == tmp_path / "correlation.yaml"
    assert config.group_id == IncidentsConfig().group_id == "plantmesh-incidents"
    assert (config.tick_s, config.checkpoint_interval_s) == (1.0, 5.0)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("tick_s: 0\n", "tick_s"),
        ("checkpoint_interval_s: -1\n", "checkpoint_interval_s"),
        ("start_from: middle\n", "start_from"),
        ("group_id: ''\n", "group_id"),
        ("hold_s: 5\n", "hold_s: unknown key"),
        ("namespace: 'two words'\n", "namespace"),
    ],
)
def test_a_bad_value_names_its_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "incidents.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key):
        load_incidents_config(path)
