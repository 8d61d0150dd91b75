"""The network-incident story end to end, a minute between plants, with decoys, under the
production correlation policy (deploy/alerting/correlation.yaml: any issue type in two plants):
simulated PLCs -> agents -> ingest -> detection -> incident stage -> alarm service, through
`plantmesh demo --scenario scenarios/network-incident.yaml`. The mills of three plants make one
incident, opened within 60 s of the second plant's alert and listing all three once the third
joins; the bearing drift (one plant) and the harmless spikes make none."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from plantmesh.demo.console import stop_console
from plantmesh.stack import manager
from tests.support.waiting import SCALE

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1200)]

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo"
POLICY = DEMO.parent / "alerting" / "correlation.yaml"


def at_s(line: str) -> int:
    found = re.match(r"\s*(\d+) s:", line)
    assert found, line
    return int(found.group(1))


def test_mills_of_three_plants_make_one_incident_and_decoys_none(
    tmp_path: Path, mqtt_url: str, kafka_bootstrap: str, influx_url: str, postgres_url: str
) -> None:
    configs = tmp_path / "configs"
    shutil.copytree(DEMO, configs)
    shutil.copy(POLICY, configs / "correlation.yaml")
    run = tmp_path / "run"
    demo = subprocess.Popen(
        [sys.executable, "-m", "plantmesh.cli", "demo", "--configs", str(configs),
         "--scenario", "scenarios/network-incident.yaml", "--duration", "240",
         "--run-dir", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        try:
            output, _ = demo.communicate(timeout=420 * SCALE)
        except subprocess.TimeoutExpired:
            demo.send_signal(signal.SIGINT)
            output, _ = demo.communicate(timeout=120)
            pytest.fail(f"the demo did not finish; it printed:\n{output}")
    finally:
        stop_console(manager.state_dir())  # the console the demo leaves running
    assert demo.returncode == 0, output
    lines = output.splitlines()

    def printed(*parts: str) -> list[str]:
        return [line for line in lines if all(part in line for part in parts)]

    [plant_b] = printed("notified operators (level 1", "raised Vibration instability on plant-b/")
    [opened] = printed("notified hq-reliability (level 1", "raised network incident:")
    assert "vibration-instability on cnc_mill" in opened
    assert 0 <= at_s(opened) - at_s(plant_b) <= 60, (opened, plant_b)
    [joined] = printed("notified hq-reliability", "updated network incident:", "plant-c mill-02")
    assert "3 of 3 plants with cnc_mill" in joined
    assert "Network incidents (1):" in output, output  # none for the drift or the spikes
    assert printed("unaffected cnc_mill machines: firmware 2.3")
