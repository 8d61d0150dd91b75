"""`plantmesh ingest check-config CONFIG --agent ...`: the ingest config, its asset registry, and
the registry against what the agents publish (unknown plants, machines, signals and units, each
named with its file and plant/machine/signal); the exit code says whether anything was found."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plantmesh.cli import main
from tests.support.check_configs import REGISTRY, agent, node, register, registry


def ingest_config(tmp_path: Path, registry_file: str | None = "registry.yaml") -> Path:
    path = tmp_path / "ingest.yaml"
    writer = {} if registry_file is None else {"registry": registry_file}
    path.write_text(yaml.safe_dump({"writer": writer}))
    return path


def check(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, list[str]]:
    code = main(["ingest", "check-config", *map(str, args)])
    return code, capsys.readouterr().out.splitlines()


def problems(lines: list[str]) -> list[str]:
    return [line.removeprefix("problem: ") for line in lines if line.startswith("problem: ")]


def test_an_agent_the_registry_knows_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry(tmp_path)
    published = agent(
        tmp_path,
        [node("press-01", "BRG_TEMP_F"), node("press-01", "pressure", "psi")],
        [register("flow", 0, "m3/h"), register("speed", 1, "rpm")],
    )
    code, lines = check(capsys, ingest_config(tmp_path), "--agent", published)
    assert code == 0, lines
    assert f"  agent {published}: gateway gw-a, plant plant-a, 4 signals" in lines
    assert lines[-1] == "no problems"


def test_every_unknown_is_a_problem_with_where_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry(tmp_path)
    published = agent(
        tmp_path,
        [
            node("press-01", "temprature"),  # a typo: neither tag nor class signal
            node("press-09", "pressure"),  # not registered
            node("press-01", "pressure", "furlongs"),  # no such unit
            node("press-01", "bearing_temp", "bar"),  # does not convert to degC
        ],
        [register("flow", 0, "m3/h")],
    )
    elsewhere = agent(tmp_path, [node("press-01", "state")], plant="plant-z", name="z.yaml")
    code, lines = check(capsys, ingest_config(tmp_path), "--agent", published, "--agent", elsewhere)
    assert code == 1
    where = f"{published}: plant-a/press-01"
    warning = (
        f"  warning: {where}/temprature (source plc): unknown signal 'temprature': neither a tag "
        f"of 'plant-a' nor a press signal in {tmp_path / 'registry.yaml'} (passed unnormalized)"
    )
    assert warning in lines  # stored anyway, by the registry's `pass` policy: not a problem
    assert problems(lines) == [
        f"{published}: plant-a/press-09/pressure (source plc): unknown machine 'press-09' of "
        f"plant 'plant-a' in {tmp_path / 'registry.yaml'} (the writer dead-letters its readings)",
        f"{where}/pressure (source plc): unknown unit 'furlongs' (the writer dead-letters it)",
        f"{where}/bearing_temp (source plc): cannot convert 'bar' (pressure) to 'degC' "
        "(temperature) (the writer dead-letters it)",
        f"{elsewhere}: plant-z/press-01/state (source plc): unknown plant 'plant-z' in "
        f"{tmp_path / 'registry.yaml'} (the writer dead-letters its readings)",
    ]
    assert lines[-1] == "4 problem(s)"


def test_modbus_profile_units_are_checked_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry(tmp_path)
    published = agent(tmp_path, [], [register("flow", 0, "gallons-ish")])
    code, lines = check(capsys, ingest_config(tmp_path), "--agent", published)
    assert code == 1
    assert problems(lines) == [
        f"{published}: plant-a/pump-01/flow (source mb): unknown unit 'gallons-ish' "
        "(the writer dead-letters it)"
    ]


def test_without_a_registry_only_units_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    published = agent(tmp_path, [node("anything", "goes"), node("x", "y", "furlongs")])
    code, lines = check(capsys, ingest_config(tmp_path, None), "--agent", published)
    assert code == 1
    assert "  no asset registry (writer.registry): readings pass unchanged" in lines
    assert [p.split(": ", 2)[-1] for p in problems(lines)] == [
        "unknown unit 'furlongs' (the writer dead-letters it)"
    ]


def test_a_broken_registry_or_agent_file_is_a_problem_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {**REGISTRY, "plants": {"plant-a": {"machines": {"press-01": "no_such_class"}}}}
    registry(tmp_path, bad)
    missing = tmp_path / "missing-agent.yaml"
    code, lines = check(capsys, ingest_config(tmp_path), "--agent", missing)
    assert code == 1
    found = problems(lines)
    assert any("writer.registry:" in p and "unknown class 'no_such_class'" in p for p in found)
    assert any(str(missing) in p for p in found)


def test_an_invalid_ingest_config_is_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ingest.yaml"
    path.write_text(yaml.safe_dump({"writer": {"no_such_key": 1}}))
    code, lines = check(capsys, path)
    assert code == 1
    assert str(path) in problems(lines)[0]
    assert "no_such_key" in problems(lines)[0]


def test_browse_roots_are_noted_as_not_checked_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry(tmp_path)
    path = tmp_path / "browse.yaml"
    source = {"type": "opcua", "name": "plc", "endpoint": "opc.tcp://h:4840",
              "browse": [{"root": "Site/plant-a"}]}  # fmt: skip
    path.write_text(yaml.safe_dump({"gateway_id": "g", "plant": "plant-a", "sources": [source]}))
    code, lines = check(capsys, ingest_config(tmp_path), "--agent", path)
    assert code == 0
    assert any(
        line.startswith(f"  note: {path}: source plc browses 'Site/plant-a'") for line in lines
    )


def test_the_demo_registry_knows_what_the_demo_agents_publish(
    capsys: pytest.CaptureFixture[str],
) -> None:
    demo = Path(__file__).resolve().parents[2] / "deploy" / "demo"
    agents = [arg for p in sorted(demo.glob("agent-*.yaml")) for arg in ("--agent", p)]
    assert len(agents) == 6
    code, lines = check(capsys, demo / "ingest.yaml", *agents)
    assert code == 0, lines
    assert lines[-1] == "no problems"
