"""`plantmesh demo`, the README's main command, run whole on the project's stack: three plants'
data reach InfluxDB, the scripted overheats raise alerts, and the escalation story plays out as
scripted: plant-a answers slowly, so its alarm reaches level 2 before anyone acknowledges it;
plant-b's maintenance acknowledges through the API a few seconds after its first notification,
so its alarm does not climb; plant-c shelves instead of answering. The scorecards at the end
tell the three habits apart. The mills of three plants swing the same way and become one
network incident, told to headquarters when it opens and when the third plant joins, explained
by what the mills share. The console is left running, with its address and a login token
printed. The demo checks its own outcome (exit code 1 when any of that did not happen); this
test also reads the story from what it printed."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from plantmesh.demo.console import stop_console
from plantmesh.stack import manager
from tests.support.waiting import SCALE

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


def _check_console(output: str) -> None:
    """The console the demo leaves running answers, and lets the printed token in."""
    found = re.search(r"The console is running at (http://127\.0\.0\.1:\d+)/console", output)
    assert found, output
    token = re.search(r"log in as headquarters \(every plant\): (\S+)", output)
    assert token, output
    with httpx.Client(base_url=found[1], trust_env=False, timeout=10) as client:
        whoami = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token[1]}"})
        assert whoami.json()["role"] == "hq"


def test_demo_escalates_locally_and_ties_the_mills_of_three_plants_into_one_incident(
    tmp_path: Path, mqtt_url: str, kafka_bootstrap: str, influx_url: str, postgres_url: str
) -> None:
    # Its own session, so a timeout can interrupt it (SIGINT) and it stops its services itself.
    demo = subprocess.Popen(
        [sys.executable, "-m", "plantmesh.cli", "demo", "--run-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        try:
            output, _ = demo.communicate(timeout=360 * SCALE)
        except subprocess.TimeoutExpired:
            demo.send_signal(signal.SIGINT)
            output, _ = demo.communicate(timeout=120)
            pytest.fail(f"the demo did not finish; it printed:\n{output}")
        _check_console(output)
    finally:
        stop_console(manager.state_dir())  # the console the demo leaves running
    assert demo.returncode == 0, output
    assert "Demo incomplete" not in output
    lines = output.splitlines()

    def printed(*parts: str) -> list[str]:
        return [line for line in lines if all(part in line for part in parts)]

    assert printed(
        "notified operators (level 1, signed): raised", "plant-a/stamping/line1/press-01"
    )
    assert printed("notified line-maintenance (level 2, signed): escalated", "plant-a/")
    assert not printed("level 2", "escalated", "plant-b/")
    assert printed("plant-b maintenance acknowledged through the API: POST /api/v1/alarms/")
    assert printed("acknowledge by user:plant-b-maintenance -> active_acknowledged")
    assert printed("plant-a operator acknowledged through the API")
    assert printed("plant-c operator shelved for an hour through the API")
    assert printed("figure", "plant-a", "plant-b", "plant-c")
    assert printed("time to acknowledge p50")
    assert "Responders, as scripted:" in output
    assert printed("plant-b acknowledges fastest")
    assert printed("plant-c shelves instead of answering")
    assert printed("resolved told to operators", "sent")
    assert not printed("acknowledging through the API failed")
    overheats = printed("bearing-overtemperature on plant-", "(high):")
    assert len(overheats) == 2  # this run's two, nothing of an earlier run
    assert "Escalation, as scripted:" in output

    incident = "network incident: vibration-instability on cnc_mill: plant-a mill-01"
    assert printed("notified hq-reliability (level 1, signed): raised", incident)
    assert printed("notified hq-reliability", "updated", incident, "plant-c mill-02")
    assert printed("3 of 3 plants with cnc_mill", "all members:", "firmware 2.1")
    assert "Network incident, as scripted:" in output
    assert (tmp_path / "alerts.jsonl").exists()
    logs = {p.name for p in tmp_path.glob("*.log")}
    assert {"alarms.log", "incidents.log", "alerting.log", "simulators.log"} <= logs
