"""`plantmesh sim list` and the argument checks of `plantmesh sim run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plantmesh.cli import build_parser, dispatch
from simulators.cli import register

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "network.yaml"


def sim(*argv: str) -> int:
    return dispatch(build_parser([("sim", register)]), ["sim", *argv])


def test_list_prints_plants_endpoints_machines_and_signals(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert sim("list", "--network", str(DEMO)) == 0
    out = capsys.readouterr().out
    assert "plant-a: OPC UA opc.tcp://127.0.0.1:14840/plantmesh; Modbus TCP 127.0.0.1:15020" in out
    assert "plant-c: OPC UA opc.tcp://127.0.0.1:14842/plantmesh" in out
    assert "stamping/line1/press-01  hydraulic_press  opcua" in out
    assert "s=plant-a/stamping/line1/press-01/bearing_temp" in out
    assert "stamping/line1/pump-01  centrifugal_pump  modbus (unit 2)" in out
    assert "input 2 float32 little/big" in out  # pump pressure, BADC


def test_list_json_describes_every_signal(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim("list", "--network", str(DEMO), "--json") == 0
    listing = json.loads(capsys.readouterr().out)
    plants = {p["plant"]: p for p in listing["plants"]}
    assert set(plants) == {"plant-a", "plant-b", "plant-c"}
    assert plants["plant-b"]["modbus"] == {
        "host": "127.0.0.1",
        "port": 15021,
        "units": [1, 2, 3, 4],
    }
    signals = {(s["machine"], s["signal"]): s for s in plants["plant-a"]["signals"]}
    bearing = signals[("press-01", "bearing_temp")]
    assert (
        bearing["opcua_node_id"]
        == "nsu=urn:plantmesh:sim;s=plant-a/stamping/line1/press-01/bearing_temp"
    )
    assert bearing["unit"] == "degC"
    parts = signals[("conveyor-01", "good_parts")]
    assert (parts["unit_id"], parts["wire_address"], parts["register"]["address"]) == (1, 9, 10)
    assert parts["register"]["type"] == "uint32"


def test_configuration_errors_exit_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "network.yaml"
    bad.write_text(DEMO.read_text().replace("tick_s: 1.0", "tick_s: -1"))
    assert sim("list", "--network", str(bad)) == 2
    assert "tick_s" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["run"], ["run", "--network", str(DEMO), "--speed", "0"], ["frobnicate"], []]
)
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        sim(*argv)
    assert caught.value.code == 2


def test_list_with_a_scenario_shows_its_events(capsys: pytest.CaptureFixture[str]) -> None:
    scenario = str(DEMO.parent / "scenarios" / "cross-plant-instability.yaml")
    assert sim("list", "--network", str(DEMO), "--scenario", scenario) == 0
    out = capsys.readouterr().out
    assert "scripted events (3):" in out
    assert "120 s -    720  oscillation     plant-a/mill-01/vibration_rms  [high]" in out
    assert sim("list", "--network", str(DEMO), "--scenario", scenario, "--json") == 0
    events = json.loads(capsys.readouterr().out)["events"]
    assert [(e["kind"], e["plant"], e["severity"]) for e in events] == [
        ("oscillation", "plant-a", "high"),
        ("oscillation", "plant-c", "high"),
        ("step", "plant-b", "low"),
    ]


def test_list_with_a_bad_scenario_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "scenario.yaml"
    bad.write_text(
        "events:\n  - {kind: flatline, plant: plant-z, machine: m, signal: s, start_s: 1}\n"
    )
    assert sim("list", "--network", str(DEMO), "--scenario", str(bad)) == 2
    assert "events[0].plant: no such plant" in capsys.readouterr().err
