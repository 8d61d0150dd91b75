"""An incident explains itself: order and times, coverage of the plants that have the class,
spread, what every member shares and what the quiet machines of the class have instead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerting.incidents.correlator import Incident, Member
from alerting.incidents.explanation import explain
from plantmesh.config import ConfigError
from plantmesh.contracts import Severity
from plantmesh.fleet import Fleet

T0 = datetime(2026, 12, 5, 14, 1, tzinfo=UTC)

REGISTRY = """
version: "1"
classes: {cnc_mill: {signals: {vibration_rms: mm/s}}}
plants:
  plant-a:
    machines:
      mill-03: {class: cnc_mill, attributes: {spindle_model: S-40, firmware: "2.1"}}
      mill-04: {class: cnc_mill, attributes: {spindle_model: S-40, firmware: "2.3"}}
      press-01: hydraulic_press
  plant-b:
    machines:
      mill-01: {class: cnc_mill, attributes: {spindle_model: S-40, firmware: 2.1}}
  plant-c:
    machines:
      mill-02: {class: cnc_mill, attributes: {spindle_model: S-40, firmware: "2.1", year: 2019}}
  plant-d:
    machines:
      mill-01: {class: cnc_mill, attributes: {spindle_model: S-40, firmware: "2.3"}}
      mill-02: {class: cnc_mill, attributes: {spindle_model: S-50, firmware: "2.3"}}
unknown_plant: reject
"""


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    path = tmp_path / "registry.yaml"
    path.write_text(REGISTRY)
    return Fleet.load(path)


def member(plant: str, machine: str, minutes: float) -> Member:
    return Member(
        plant=plant,
        area="milling",
        line="line1",
        machine=machine,
        signal="vibration_rms",
        alert_id=f"{plant}-{machine}",
        raised_at=T0 + timedelta(minutes=minutes),
        summary=f"{machine} swinging",
        severity=Severity.HIGH,
    )


def incident(*members: Member) -> Incident:
    found = Incident("i1", "cnc_mill", "vibration-instability", opened_at=T0)
    for m in members:
        found.members[m.where] = m
    return found


def test_the_example_from_the_mission(fleet: Fleet) -> None:
    why = explain(
        incident(
            member("plant-c", "mill-02", 6),
            member("plant-a", "mill-03", 0),
            member("plant-b", "mill-01", 3),
        ),
        fleet,
    )
    assert why.text == (
        "vibration-instability on cnc_mill: plant-a mill-03 14:01, plant-b mill-01 14:04, "
        "plant-c mill-02 14:07 (UTC) — 3 of 4 plants with cnc_mill (not plant-d), within 6 min; "
        "all members: firmware 2.1, spindle_model S-40; unaffected cnc_mill machines: "
        "firmware 2.3 (3)"
    )
    assert why.first_plant == "plant-a"
    assert why.plant_delays_s == {"plant-a": 0.0, "plant-b": 180.0, "plant-c": 360.0}
    assert why.span_s == 360.0
    assert why.unaffected_plants == ["plant-d"]
    assert why.common == {"firmware": "2.1", "spindle_model": "S-40"}
    assert why.unaffected_values["spindle_model"] == {"S-40": 2, "S-50": 1}
    assert why.distinguishing == ["firmware"]  # S-40 is on quiet machines too


def test_a_member_the_registry_does_not_know_leaves_nothing_in_common(fleet: Fleet) -> None:
    why = explain(incident(member("plant-a", "mill-03", 0), member("plant-x", "m9", 2)), fleet)
    assert why.common == {}
    assert why.distinguishing == []
    assert "all members" not in why.text
    assert why.plants_with_class == ["plant-a", "plant-b", "plant-c", "plant-d", "plant-x"]


def test_fleet_reads_plain_and_described_machines(fleet: Fleet) -> None:
    assert len(fleet) == 7
    press = fleet.get("plant-a", "press-01")
    assert press is not None
    assert (press.machine_class, dict(press.attributes)) == ("hydraulic_press", {})
    mill = fleet.get("plant-c", "mill-02")
    assert mill is not None
    assert dict(mill.attributes) == {"firmware": "2.1", "spindle_model": "S-40", "year": "2019"}
    assert {m.plant for m in fleet.of_class("cnc_mill")} == {
        "plant-a",
        "plant-b",
        "plant-c",
        "plant-d",
    }


def test_fleet_names_a_bad_machine_entry(tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text("plants: {plant-a: {machines: {mill-01: {klass: cnc_mill}}}}\n")
    with pytest.raises(ConfigError, match="mill-01"):
        Fleet.load(path)


def test_the_demo_registry_explains_its_cross_plant_mills() -> None:
    demo = Fleet.load(Path(__file__).resolve().parents[2] / "deploy" / "demo" / "registry.yaml")
    why = explain(
        incident(
            member("plant-a", "mill-01", 0),
            member("plant-b", "mill-01", 2),
            member("plant-c", "mill-02", 4),
        ),
        demo,
    )
    assert why.common == {"firmware": "2.1", "spindle_model": "S-40", "supplier": "Kessler"}
    assert why.distinguishing == ["firmware"]
    assert why.text.endswith("unaffected cnc_mill machines: firmware 2.3 (4)")
