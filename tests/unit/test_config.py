from __future__ import annotations

from pathlib import Path

import pytest

from plantmesh.config import ConfigError, ConfigModel, load_config, resolve_relative
from plantmesh.connections import InfluxConnection, MqttConnection


class Sample(ConfigModel):
    name: str
    mqtt: MqttConnection = MqttConnection()
    rate_hz: float = 1.0


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "svc.yaml"
    path.write_text(text)
    return path


def test_valid_file_loads(tmp_path: Path) -> None:
    cfg = load_config(Sample, write(tmp_path, "name: a\nmqtt: {url: 'mqtts://broker:8884'}\n"))
    assert cfg.mqtt.host == "broker"
    assert cfg.mqtt.port == 8884
    assert cfg.mqtt.tls


def test_error_names_file_key_and_expectation(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\nrate_hz: fast\n")
    with pytest.raises(ConfigError) as info:
        load_config(Sample, path)
    message = str(info.value)
    assert str(path) in message
    assert "rate_hz" in message
    assert "valid number" in message


def test_unknown_and_missing_keys_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(Sample, write(tmp_path, "mqtt: {url: 'mqtt://h', passwrd: x}\n"))
    problems = info.value.problems
    assert "name: required key is missing" in problems
    assert any(p.startswith("mqtt.passwrd: unknown key") for p in problems)


def test_nested_url_validation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.url: .*mqtt://host:port"):
        load_config(Sample, write(tmp_path, "name: a\nmqtt: {url: 'http://h:1'}\n"))


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 2"):
        load_config(Sample, write(tmp_path, "name: a\n  rate_hz: 1\n"))


def test_environment_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER", "mqtt://10.0.0.1:1883")
    text = "name: ${UNSET_NAME:-fallback}\nmqtt: {url: '${BROKER}'}\n"
    cfg = load_config(Sample, write(tmp_path, text))
    assert cfg.name == "fallback"
    assert cfg.mqtt.host == "10.0.0.1"
    with pytest.raises(ConfigError, match="name: environment variable NOPE is not set"):
        load_config(Sample, write(tmp_path, "name: ${NOPE}\n"))


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(Sample, tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(Sample, write(tmp_path, "- a\n- b\n"))


def test_connection_defaults_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANTMESH_INFLUX_URL", "http://127.0.0.1:9999/")
    assert InfluxConnection().url == "http://127.0.0.1:9999"
    assert InfluxConnection().database == "plantmesh"
    assert "hunter2" not in repr(MqttConnection(password="hunter2"))


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    assert resolve_relative(tmp_path / "a.yaml", "profiles/p.yaml") == tmp_path / "profiles/p.yaml"
    assert resolve_relative(tmp_path / "a.yaml", "/abs.yaml") == Path("/abs.yaml")


def test_union_tags_do_not_appear_in_keys(tmp_path: Path) -> None:
    from typing import Annotated, Literal

    from pydantic import Field

    class A(ConfigModel):
        type: Literal["a"]
        endpoint: str

    class B(ConfigModel):
        type: Literal["b"]
        host: str

    class WithSources(ConfigModel):
        sources: list[Annotated[A | B, Field(discriminator="type")]]

    with pytest.raises(ConfigError) as info:
        load_config(
            WithSources, write(tmp_path, "sources:\n  - {type: b, host: h}\n  - {type: a}\n")
        )
    assert info.value.problems == ["sources[1].endpoint: required key is missing (line 3)"]


def test_errors_name_the_line(tmp_path: Path) -> None:
    text = "name: a\nmqtt:\n  url: 'mqtt://h'\n  passwrd: x\nrate_hz: fast\n"
    with pytest.raises(ConfigError) as info:
        load_config(Sample, write(tmp_path, text))
    problems = sorted(info.value.problems)
    assert problems[0].startswith("mqtt.passwrd: unknown key (line 4)")
    assert problems[1].startswith("rate_hz: Input should be a valid number")
    assert problems[1].endswith("(line 5)")
