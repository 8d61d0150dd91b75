"""Register images: every table and encoding of the demo profiles decodes to the served value."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from plantmesh.modbus_profile import Table, decode_registers, load_profile
from simulators.machines import machine_signals
from simulators.modbus_image import DeviceLayout, pack_bits

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
        values = {name: rng.uniform(spec.low, spec.high) for name, spec in signals.items()}
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
