"""`plantmesh alerts` against the running alarm API: list, show, act, and refusals printed with
their reason and exit code 1."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support.alarm_api import Api, running_api

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[Api]:
    with running_api(tmp_path_factory.mktemp("cli"), kafka_bootstrap) as running:
        yield running


def alerts(api: Api, who: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "plantmesh.cli",
            "alerts",
            "--api",
            api.base,
            "--token",
            api.tokens[who],
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_list_show_and_act_as_an_operator(api: Api) -> None:
    listed = alerts(api, "operator", "list")
    assert listed.returncode == 0, listed.stderr
    assert "a1" in listed.stdout
    assert "b1" not in listed.stdout  # plant-b is outside the token's plants
    acked = alerts(api, "operator", "ack", "a1", "--comment", "walking to mill-01")
    assert acked.returncode == 0, acked.stderr
    assert "active_acknowledged" in acked.stdout
    shown = alerts(api, "operator", "--json", "show", "a1")
    timeline = json.loads(shown.stdout)["timeline"]
    assert (timeline[-1]["actor"], timeline[-1]["text"]) == ("user:ops-a", "walking to mill-01")
    shelved = alerts(api, "operator", "shelve", "a1", "--reason", "known vibration", "--for", "30m")
    assert shelved.returncode == 0, shelved.stderr
    commented = alerts(api, "operator", "comment", "a1", "--text", "vendor called")
    assert commented.returncode == 0
    assert "vendor called" in commented.stdout


def test_refusals_say_why(api: Api) -> None:
    other_plant = alerts(api, "operator", "ack", "b1")
    assert other_plant.returncode == 1
    assert "403" in other_plant.stderr
    assert "outside this token's plants" in other_plant.stderr
    not_allowed = alerts(api, "operator", "resolve", "a1")
    assert (not_allowed.returncode, "may not resolve" in not_allowed.stderr) == (1, True)
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "plantmesh.cli",
            "alerts",
            "--api",
            api.base,
            "--token",
            "nope",
            "list",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (bad.returncode, "401" in bad.stderr) == (1, True)


def scorecard(api: Api, who: str, *args: str) -> subprocess.CompletedProcess[str]:
    period = ["--since", "2026-12-04T07:00Z", "--until", "2026-12-04T09:00Z"]
    command = [sys.executable, "-m", "plantmesh.cli", "scorecard", "--api", api.base]
    return subprocess.run(
        [*command, "--token", api.tokens[who], *period, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_scorecard_prints_the_plants_side_by_side_within_the_scope(api: Api) -> None:
    both = scorecard(api, "admin", "--trend", "2")
    assert both.returncode == 0, both.stderr
    header = both.stdout.splitlines()[1].split()
    assert header == ["figure", "plant-a", "plant-b"]
    assert "time to acknowledge p50" in both.stdout
    assert "data completeness: no InfluxDB configured" in both.stdout
    assert "2026-12-04 07:00" in both.stdout  # the first trend point
    own = scorecard(api, "operator", "--csv", "-")
    assert own.returncode == 0, own.stderr
    first = own.stdout.splitlines()[0]
    assert first == "figure,key,unit,plant-a,plant-a worst"
    alarms = next(line for line in own.stdout.splitlines() if line.startswith("alarms,alarms"))
    assert alarms == "alarms,alarms,,1.0,"
    refused = scorecard(api, "operator", "--plant", "plant-b")
    assert (refused.returncode, "403" in refused.stderr) == (1, True)
    bad_time = scorecard(api, "admin", "--until", "yesterday")
    assert (bad_time.returncode, "expected an ISO time" in bad_time.stderr) == (2, True)
