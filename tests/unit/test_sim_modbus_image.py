"""Register images: every table and encoding of the demo profiles decodes to the served value."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from plantmesh.modbus_profile import RegisterSpec, Table, decode_registers, load_profile
from simulators.machines import machine_signals
from simulators.modbus_image import DeviceLayout, pack_bits, wrap_counter

PROFILES = sorted(
    (Path(__file__).resolve().parents[2] / "deploy" / "demo" / "profiles").glob("*.yaml")
)


def test_bits_pack_least_significant_first() -> None:
    flags = [False] * 32
    flags[0] = flags[3] = flags[17] = True
    assert pack_bits(flags) == [0b1001, 0b10]


def test_demo_profiles_cover_the_encodings_the_brief_asks_for() -> None:
    specs = [spec for path in PROFILES for spec in load_profile(path).registers]
    orders = {(s.byte_order.value, s.word_order.value) for s in specs if s.type == "float32"}
    assert orders == {("big", "big"), ("big", "little"), ("little", "big"), ("little", "little")}
    assert any(s.type == "int16" and s.scale != 1 for s in specs)
    assert any(s.type == "uint32" and s.signal in ("good_parts", "energy") for s in specs)
    assert {s.table for s in specs} == set(Table)
    assert {load_profile(p).addressing for p in PROFILES} == {0, 1}


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_image_decodes_to_the_served_values(path: Path) -> None:
    profile = load_profile(path)
    layout = DeviceLayout(profile)
    signals = machine_signals(profile.name)
    rng = random.Random(path.stem)
    for _ in range(20):
        # Within what every register can hold (16-bit counters included); wrapping: below.
        values = {
            name: rng.uniform(spec.low, min(spec.high, 60_000)) for name, spec in signals.items()
        }
        values["running"] = float(rng.random() < 0.5)
        image, served = layout.encode(values)
        assert set(served) == {spec.signal for spec in profile.registers}
        for spec in profile.registers:
            block = layout.blocks[spec.table]
            offset = profile.wire_address(spec) - block.start
            if block.bits:
                bit = (image[spec.table][offset // 16] >> (offset % 16)) & 1
                assert served[spec.signal] is bool(bit) is (values[spec.signal] >= 0.5)
            else:
                words = image[spec.table][offset : offset + spec.width]
                assert served[spec.signal] == decode_registers(spec, words)
                tolerance = abs(spec.scale) / 2 + 1e-6 * abs(values[spec.signal])
                if spec.type.value in ("float32", "float64"):
                    tolerance = 1e-6 * abs(values[spec.signal]) + 1e-9
                assert abs(served[spec.signal] - values[spec.signal]) <= tolerance + 1e-9


@pytest.mark.parametrize(
    ("type_", "scale", "value", "expected"),
    [
        ("uint16", 1.0, 65_535.0, 65_535.0),
        ("uint16", 1.0, 65_536.0, 0.0),
        ("uint16", 1.0, 70_000.0, 70_000.0 - 65_536),
        ("uint32", 1.0, 2.0**32 + 5, 5.0),
        ("uint32", 0.01, 42_949_672.96 + 1.0, 1.0),
        ("int16", 1.0, 32_768.0, -32_768.0),
        ("uint64", 1.0, 123_456_789.0, 123_456_789.0),
        ("float32", 1.0, 1e20, 1e20),
    ],
)
def test_counters_wrap_at_their_register_width(
    type_: str, scale: float, value: float, expected: float
) -> None:
    spec = RegisterSpec(signal="good_parts", address=0, type=type_, scale=scale)
    assert wrap_counter(spec, value) == pytest.approx(expected)


def test_counters_named_to_encode_wrap_and_measurements_clamp() -> None:
    profile = load_profile(next(p for p in PROFILES if p.stem == "conveyor"))
    layout = DeviceLayout(profile)
    values = dict.fromkeys(machine_signals("conveyor"), 1.0)
    values["scrap_parts"] = 65_536.0 + 7  # a uint16 counter
    values["speed"] = 1e9  # an int16 measurement (x0.1) beyond its range
    _, served = layout.encode(values, counters={"scrap_parts", "good_parts"})
    assert served["scrap_parts"] == 7.0
    assert served["speed"] == pytest.approx(3276.7)
