"""The network file: the demo loads, and every mistake is reported at its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from plantmesh.config import ConfigError
from plantmesh.modbus_profile import DeviceProfile
from simulators.event_config import Excursion, Oscillation
from simulators.network import NetworkConfig, Protocol, load_network
from simulators.scenario import load_scenario

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "deploy" / "demo" / "network.yaml"
PUMP_PROFILE = str(REPO / "deploy" / "demo" / "profiles" / "centrifugal_pump.yaml")


def base() -> dict[str, Any]:
    return {
        "seed": 1,
        "tick_s": 0.5,
        "plants": [
            {
                "id": "plant-x",
                "opcua": {"port": 0},
                "modbus": {"port": 0},
                "machines": [
                    {
                        "id": "press-01",
                        "area": "stamping",
                        "line": "line1",
                        "class": "hydraulic_press",
                        "protocol": "opcua",
                    },
                    {
                        "id": "pump-01",
                        "area": "utilities",
                        "line": "line1",
                        "class": "centrifugal_pump",
                        "protocol": "modbus",
                        "unit_id": 1,
                        "profile": PUMP_PROFILE,
                    },
                ],
            }
        ],
        "events": [
            {
                "plant": "plant-x",
                "machine": "press-01",
                "signal": "bearing_temp",
                "kind": "excursion",
                "start_s": 2,
                "duration_s": 3,
                "value": 95.0,
            }
        ],
    }


def load(tmp_path: Path, data: dict[str, Any]) -> NetworkConfig:
    path = tmp_path / "network.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_network(path)


def problems(tmp_path: Path, data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, data)
    assert str(tmp_path / "network.yaml") in str(caught.value)
    return str(caught.value)


def test_demo_network_has_three_plants_of_different_size() -> None:
    network = load_network(DEMO)
    sizes = {p.id: len(p.machines) for p in network.plants}
    assert sizes == {"plant-a": 12, "plant-b": 6, "plant-c": 5}
    lines = {p.id: len({(m.area, m.line) for m in p.machines}) for p in network.plants}
    assert lines == {"plant-a": 3, "plant-b": 2, "plant-c": 1}
    ports = {p.id: (p.opcua.port, p.modbus.port) for p in network.plants if p.opcua and p.modbus}
    assert ports == {
        "plant-a": (14840, 15020),
        "plant-b": (14841, 15021),
        "plant-c": (14842, 15022),
    }
    assert network.tick_s == 1.0
    for plant in network.plants:
        assert {m.protocol for m in plant.machines} == {Protocol.OPCUA, Protocol.MODBUS}
    classes = {p.id: {m.machine_class for m in p.machines} for p in network.plants}
    assert classes["plant-a"] & classes["plant-b"] & classes["plant-c"]
    # Profiles are loaded, relative to the network file.
    modbus = [m for _, m in network.machines() if m.protocol == Protocol.MODBUS]
    assert modbus
    assert all(isinstance(m.profile, DeviceProfile) for m in modbus)


def test_demo_events_overheat_a_press_bearing_in_plant_a_and_plant_b() -> None:
    network = load_network(DEMO)
    assert network.events == []  # scripted events live in scenario files
    scenario = load_scenario(DEMO.parent / "scenarios" / "demo.yaml", network)
    overheats = [e for e in scenario.events if isinstance(e, Excursion)]
    by_plant = {e.plant: e for e in overheats}
    assert len(overheats) == 2
    a, b = by_plant["plant-a"], by_plant["plant-b"]
    assert network.plant("plant-a").machine(a.machine).protocol == Protocol.OPCUA  # type: ignore[union-attr]
    assert network.plant("plant-b").machine(b.machine).protocol == Protocol.MODBUS  # type: ignore[union-attr]
    for event, start in ((a, 15), (b, 25)):
        assert event.signal == "bearing_temp"
        machine = network.plant(event.plant).machine(event.machine)
        assert machine is not None
        assert machine.machine_class == "hydraulic_press"
        assert abs(event.start_s - start) <= 5
        # Longer than the demo escalation's first level (15 s) plus the rule's on-delay, so an
        # unanswered alarm reaches level 2; over before the demo's minute ends.
        assert 25 <= event.duration_s <= 35
        assert event.start_s + event.duration_s <= 55
        assert event.value - 3 * event.noise > 90 + 3  # clears the demo threshold with margin


def test_demo_events_grow_a_vibration_on_a_mill_of_each_plant() -> None:
    """The network incident's story: the same growing vibration on one CNC mill per plant."""
    network = load_network(DEMO)
    scenario = load_scenario(DEMO.parent / "scenarios" / "demo.yaml", network)
    swings = [e for e in scenario.events if isinstance(e, Oscillation)]
    assert sorted(e.plant for e in swings) == ["plant-a", "plant-b", "plant-c"]
    for swing in swings:
        machine = network.plant(swing.plant).machine(swing.machine)
        assert machine is not None
        assert machine.machine_class == "cnc_mill"
        assert swing.signal == "vibration_rms"


def test_profile_paths_are_relative_to_the_network_file(tmp_path: Path) -> None:
    data = base()
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "pump.yaml").write_text(Path(PUMP_PROFILE).read_text())
    data["plants"][0]["machines"][1]["profile"] = "profiles/pump.yaml"
    network = load(tmp_path, data)
    profile = network.plants[0].machines[1].profile
    assert isinstance(profile, DeviceProfile)
    assert profile.name == "centrifugal_pump"


def test_with_free_ports_rebinds_every_server_to_port_zero() -> None:
    network = load_network(DEMO).with_free_ports()
    assert all(p.opcua and p.opcua.port == 0 for p in network.plants)
    assert all(p.modbus and p.modbus.port == 0 for p in network.plants)


def test_unknown_plant_machine_and_signal_in_events(tmp_path: Path) -> None:
    data = base()
    event = data["events"][0]
    data["events"] = [
        {**event, "plant": "plant-z"},
        {**event, "machine": "press-99"},
        {**event, "signal": "flow"},
    ]
    text = problems(tmp_path, data)
    assert "events[0].plant: no such plant" in text
    assert "plant-z" in text
    assert "events[1].machine: no such machine in plant-x" in text
    assert "events[2].signal: press-01 serves no such signal" in text


def test_event_signal_must_be_served_by_the_modbus_profile(tmp_path: Path) -> None:
    data = base()
    data["events"][0].update(machine="pump-01", signal="bearing_temp")
    assert load(tmp_path, data).events[0].machine == "pump-01"  # in the pump profile
    data["events"][0]["signal"] = "good_parts"  # pumps have no part counter
    assert "events[0].signal" in problems(tmp_path, data)


def test_duplicate_machine_id(tmp_path: Path) -> None:
    data = base()
    plant = data["plants"][0]
    plant["machines"].append({**plant["machines"][0]})
    assert "plants[0].machines[2].id: duplicate machine id" in problems(tmp_path, data)


def test_duplicate_plant_ids_and_ports(tmp_path: Path) -> None:
    data = base()
    plant = data["plants"][0]
    plant["opcua"]["port"] = 14999
    data["plants"].append({**plant, "modbus": {"port": 14999}})
    text = problems(tmp_path, data)
    assert "plants[1].id: duplicate plant id" in text
    assert "plants[1].modbus.port: port already used by plant-x.opcua" in text


def test_modbus_machine_needs_unit_id_and_profile(tmp_path: Path) -> None:
    data = base()
    pump = data["plants"][0]["machines"][1]
    del pump["unit_id"], pump["profile"]
    text = problems(tmp_path, data)
    assert "plants[0].machines[1].unit_id: a modbus machine needs a unit_id" in text
    assert "plants[0].machines[1].profile: a modbus machine needs a device profile" in text


def test_opcua_machine_takes_no_unit_id(tmp_path: Path) -> None:
    data = base()
    data["plants"][0]["machines"][0]["unit_id"] = 3
    assert "plants[0].machines[0].unit_id: applies to modbus machines only" in problems(
        tmp_path, data
    )


def test_duplicate_unit_ids(tmp_path: Path) -> None:
    data = base()
    pump = data["plants"][0]["machines"][1]
    data["plants"][0]["machines"].append({**pump, "id": "pump-02"})
    assert "plants[0].machines[2].unit_id: unit id already used by pump-01" in problems(
        tmp_path, data
    )


def test_plant_with_modbus_machines_needs_a_modbus_server(tmp_path: Path) -> None:
    data = base()
    del data["plants"][0]["modbus"]
    assert "plants[0].modbus: required: machines pump-01 use modbus" in problems(tmp_path, data)
    data = base()
    del data["plants"][0]["opcua"]
    assert "plants[0].opcua: required: machines press-01 use opcua" in problems(tmp_path, data)


def test_unknown_class_and_unknown_key(tmp_path: Path) -> None:
    data = base()
    data["plants"][0]["machines"][0]["class"] = "laser_cutter"
    data["plants"][0]["machines"][0]["colour"] = "red"
    text = problems(tmp_path, data)
    assert "plants[0].machines[0].class: Value error, unknown machine class" in text
    assert "hydraulic_press" in text
    assert "plants[0].machines[0].colour: unknown key" in text


def test_profile_registers_must_be_signals_of_the_class(tmp_path: Path) -> None:
    data = base()
    profile = yaml.safe_load(Path(PUMP_PROFILE).read_text())
    profile["registers"].append({"signal": "good_parts", "table": "holding", "address": 40})
    data["plants"][0]["machines"][1]["profile"] = profile  # inline profiles work too
    text = problems(tmp_path, data)
    assert (
        "plants[0].machines[1].profile.registers[10].signal: centrifugal_pump has no such" in text
    )


def test_missing_profile_file_is_reported_at_its_key(tmp_path: Path) -> None:
    data = base()
    data["plants"][0]["machines"][1]["profile"] = "profiles/nope.yaml"
    text = problems(tmp_path, data)
    assert "plants[0].machines[1].profile:" in text
    assert "nope.yaml" in text


def test_event_window_must_make_sense(tmp_path: Path) -> None:
    data = base()
    data["events"][0]["duration_s"] = 0
    assert "events[0].duration_s: Input should be greater than 0" in problems(tmp_path, data)
    data = base()
    data["events"][0]["kind"] = "spike"
    text = problems(tmp_path, data)
    assert "events[0]: Input tag 'spike'" in text
    assert "'spikes'" in text  # the kinds there are


def test_opcua_security_settings(tmp_path: Path) -> None:
    data = base()
    data["plants"][0]["opcua"].update(
        security=["sign", "sign_and_encrypt"],
        anonymous=False,
        users={"operator": "pw"},
        certificate_dir="certs",
    )
    opcua = load(tmp_path, data).plants[0].opcua
    assert opcua is not None
    assert opcua.secure
    assert opcua.certificate_dir == str(tmp_path / "certs")  # relative to the network file
    assert opcua.users["operator"].get_secret_value() == "pw"
    assert "pw" not in repr(opcua)
    data["plants"][0]["opcua"].update(users={}, security=["none", "tls"])
    text = problems(tmp_path, data)
    assert (
        "plants[0].opcua.security[1]: Input should be 'none', 'sign' or 'sign_and_encrypt'" in text
    )
    data["plants"][0]["opcua"]["security"] = ["none"]
    assert "nobody could log in" in problems(tmp_path, data)
