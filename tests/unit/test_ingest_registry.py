from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest.normalize.registry import AssetRegistry, NormalizeError, RegistryFile
from plantmesh.config import ConfigError, validate_config
from plantmesh.contracts import AssetPath, Reading
from plantmesh.topics import DlqReason

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "ingest" / "registry.yaml"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def registry() -> AssetRegistry:
    return AssetRegistry.load(SAMPLE)


def reading(plant: str, machine: str, signal: str, value: Any, unit: str | None = None) -> Reading:
    asset = AssetPath(plant=plant, area="a", line="l", machine=machine)
    return Reading(asset=asset, signal=signal, value=value, unit=unit, source_ts=T0, gateway_ts=T0)


def test_sample_registry_loads_with_its_version(registry: AssetRegistry) -> None:
    assert registry.version == "2026-11-22.1"


@pytest.mark.parametrize(
    ("machine", "tag", "value", "signal", "unit", "expected"),
    [
        ("PRS_1", "BRG_TEMP_F", 212.0, "bearing_temp", "degC", 100.0),
        ("PRS_1", "VIB_IPS", 0.1, "vibration_rms", "mm/s", 2.54),
        ("PRS_1", "SYS_PRESS_PSI", 145.037738, "pressure", "bar", 10.0),
        ("PUMP_3", "FLOW_GPM", 10.0, "flow", "l/min", 37.85411784),
    ],
)
def test_local_tags_become_canonical_signals_in_canonical_units(
    registry: AssetRegistry,
    machine: str,
    tag: str,
    value: float,
    signal: str,
    unit: str,
    expected: float,
) -> None:
    out = registry.normalize(reading("plant-us", machine, tag, value))
    assert (out.signal, out.unit) == (signal, unit)
    assert out.value == pytest.approx(expected)
    assert out.asset.machine == machine


def test_a_canonical_signal_in_another_unit_is_converted(registry: AssetRegistry) -> None:
    out = registry.normalize(reading("plant-a", "press-01", "bearing_temp", 212.0, "degF"))
    assert (out.signal, out.unit) == ("bearing_temp", "degC")
    assert out.value == pytest.approx(100.0)


def test_a_reading_already_canonical_is_returned_as_is(registry: AssetRegistry) -> None:
    original = reading("plant-a", "press-01", "bearing_temp", 61.2, "degC")
    assert registry.normalize(original) is original
    unitless = reading("plant-a", "press-01", "running", True)
    assert registry.normalize(unitless) is unitless


@pytest.mark.parametrize(
    ("plant", "machine", "signal", "reason"),
    [
        ("nowhere", "press-01", "bearing_temp", DlqReason.UNKNOWN_PLANT),
        ("plant-a", "ghost-9", "bearing_temp", DlqReason.UNKNOWN_MACHINE),
    ],
)
def test_unknown_plants_and_machines_are_rejected(
    registry: AssetRegistry, plant: str, machine: str, signal: str, reason: str
) -> None:
    with pytest.raises(NormalizeError) as caught:
        registry.normalize(reading(plant, machine, signal, 1.0))
    assert caught.value.reason == reason
    assert plant in str(caught.value) or machine in str(caught.value)


def test_unknown_signals_pass_by_default(registry: AssetRegistry) -> None:
    odd = reading("plant-a", "press-01", "local_only_tag", 5.0, "whatever")
    assert registry.normalize(odd) is odd


def spec(**changes: Any) -> RegistryFile:
    data = yaml.safe_load(SAMPLE.read_text())
    data.update(changes)
    return validate_config(RegistryFile, data)


def test_policies_can_pass_unknown_plants_and_reject_unknown_signals() -> None:
    registry = AssetRegistry(spec(unknown_plant="pass", unknown_signal="reject"))
    stranger = reading("nowhere", "x", "y", 1.0)
    assert registry.normalize(stranger) is stranger
    with pytest.raises(NormalizeError) as caught:
        registry.normalize(reading("plant-a", "press-01", "local_only_tag", 1.0))
    assert caught.value.reason == DlqReason.UNKNOWN_SIGNAL


@pytest.mark.parametrize(
    ("value", "unit"), [(True, "degF"), ("hot", "degF"), (1.0, "bar"), (1.0, "parsec")]
)
def test_values_that_cannot_be_converted_are_rejected(value: Any, unit: str) -> None:
    registry = AssetRegistry(spec())
    with pytest.raises(NormalizeError) as caught:
        registry.normalize(reading("plant-a", "press-01", "bearing_temp", value, unit))
    assert caught.value.reason == DlqReason.UNIT_MISMATCH


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"plants": {"p": {"machines": {"m": "no_such_class"}}}}, "unknown class"),
        ({"plants": {"p": {"machines": {"m": {"class": "no_such_class"}}}}}, "unknown class"),
        ({"plants": {"p": {"machines": {"m": {"class": "air_compressor", "x": 1}}}}}, "x"),
        (
            {"plants": {"p": {"tags": {"air_compressor": {"T": {"signal": "nope"}}}}}},
            "not a air_compressor signal",
        ),
        (
            {
                "plants": {
                    "p": {"tags": {"air_compressor": {"T": {"signal": "pressure", "unit": "degF"}}}}
                }
            },
            "cannot convert",
        ),
        ({"classes": {"c": {"signals": {"s": "furlong"}}}}, "unknown unit"),
        ({"version": ""}, "version"),
    ],
)
def test_inconsistent_registries_fail_at_load(changes: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        spec(**changes)


def test_a_machine_may_carry_attributes_besides_its_class() -> None:
    described = {"class": "air_compressor", "attributes": {"model": "GA-30", "year": 2019}}
    registry = AssetRegistry(
        spec(plants={"p": {"machines": {"m": described, "n": "air_compressor"}}})
    )
    assert registry.machine_class("p", "m") == "air_compressor"
    assert registry.machine_class("p", "n") == "air_compressor"
