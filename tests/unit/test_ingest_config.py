from __future__ import annotations

from pathlib import Path

import pytest

from ingest.cli import register
from ingest.config import DEFAULT_BRIDGE_CLIENT_ID, IngestConfig, load_ingest_config
from ingest.normalize.registry import AssetRegistry
from plantmesh.cli import build_parser
from plantmesh.config import ConfigError, load_config, validate_config

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "ingest" / "sample.yaml"


def test_sample_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANTMESH_NAMESPACE", "plant-a")
    monkeypatch.setenv("PLANTMESH_KAFKA_BOOTSTRAP", "127.0.0.1:9999")
    config = load_config(IngestConfig, SAMPLE)
    assert config.namespace == "plant-a"
    assert config.kafka.bootstrap == "127.0.0.1:9999"
    assert config.bridge.shared_group == "plantmesh-bridge"
    assert config.bridge.max_in_flight == 1000
    assert config.writer.group_id == "plantmesh-writer"
    assert config.writer.max_batch_readings == 5000
    assert config.writer.create_database is True
    assert config.kafka_topics.partitions == 4
    assert config.influxdb.database == "plantmesh"
    assert config.topics.telemetry_raw == "plant-a.telemetry.raw"
    assert config.writer.completeness.enabled is True
    assert config.writer.metrics.address is None


def test_sample_registry_path_is_relative_to_the_config_file() -> None:
    config = load_ingest_config(SAMPLE)
    assert config.writer.registry == SAMPLE.parent / "registry.yaml"
    assert AssetRegistry.load(config.writer.registry).version


@pytest.mark.parametrize("listen", ["9464", ":9464", "host:port", "h:70000"])
def test_metrics_listen_must_be_host_and_port(listen: str) -> None:
    with pytest.raises(ConfigError, match="host:port"):
        validate_config(IngestConfig, {"writer": {"metrics": {"listen": listen}}})


def test_metrics_listen_gives_an_address() -> None:
    config = validate_config(IngestConfig, {"bridge": {"metrics": {"listen": "127.0.0.1:0"}}})
    assert config.bridge.metrics.address == ("127.0.0.1", 0)


def test_defaults_give_the_bridge_a_fixed_client_id() -> None:
    config = validate_config(IngestConfig, {})
    assert config.bridge_client_id == DEFAULT_BRIDGE_CLIENT_ID
    no_id = validate_config(IngestConfig, {"mqtt": {"url": "mqtt://127.0.0.1:1"}})
    assert no_id.bridge_client_id == DEFAULT_BRIDGE_CLIENT_ID


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ({"bridge": {"max_inflight": 5}}, "bridge.max_inflight: unknown key"),
        ({"bridge": {"max_in_flight": 0}}, "bridge.max_in_flight"),
        ({"bridge": {"max_in_flight": 70000}}, "bridge.max_in_flight"),
        ({"bridge": {"shared_group": "a/b"}}, "bridge.shared_group"),
        ({"namespace": "has space"}, "namespace"),
        ({"namespace": "a/b"}, "namespace"),
        ({"writer": {"max_batch_readings": 0}}, "writer.max_batch_readings"),
        ({"kafka_topics": {"partitions": 0}}, "kafka_topics.partitions"),
        ({"backoff": {"initial_s": 5, "max_s": 1}}, "max_s must be at least initial_s"),
        ({"influxdb": {"url": "ftp://x"}}, "influxdb.url"),
    ],
)
def test_bad_values_are_named(data: dict[str, object], complaint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_config(IngestConfig, data, "ingest.yaml")
    assert "ingest.yaml" in str(caught.value)
    assert complaint in str(caught.value)


def test_cli_has_bridge_and_writer_with_config() -> None:
    parser = build_parser([("ingest", register)])
    args = parser.parse_args(["ingest", "bridge", "--config", "x.yaml"])
    assert args.config == Path("x.yaml")
    assert callable(args.func)
    args = parser.parse_args(["ingest", "writer", "--config", "y.yaml"])
    assert args.config == Path("y.yaml")
    with pytest.raises(SystemExit):
        parser.parse_args(["ingest", "bridge"])  # --config is required


def test_cli_reports_a_bad_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from plantmesh.cli import dispatch

    bad = tmp_path / "ingest.yaml"
    bad.write_text("writer:\n  group: x\n")
    parser = build_parser([("ingest", register)])
    assert dispatch(parser, ["ingest", "writer", "--config", str(bad)]) == 2
    assert "writer.group: unknown key" in capsys.readouterr().err
