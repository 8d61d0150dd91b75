"""The alarm service as deployed (`python -m alerting alarms`), killed with SIGKILL in the middle
of an escalation: the next level is still told on time (deadlines are rows, not sleeping
tasks), and nothing is told twice. Two processes in one group: every notification once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from alerting.records.database import open_database
from alerting.records.queries import get_alarm
from plantmesh.topics import Topics
from tests.support.alarm_service import send, write_config
from tests.support.alarms import alert_event
from tests.support.receivers import HttpReceiver, SmtpReceiver
from tests.support.waiting import async_wait_for, now

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ACK_WITHIN_S = 4.0


class Processes:
    def __init__(self, config: Path, log_dir: Path) -> None:
        self.config = config
        self.log_dir = log_dir
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"alarms-{len(self.running)}.log").open("wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "alerting", "alarms", "--config", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()
        self.running.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.running:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def processes(
    tmp_path: Path,
    namespace: str,
    kafka_bootstrap: str,
    database_url: str,
    http: HttpReceiver,
    smtp: SmtpReceiver,
) -> Iterator[Processes]:
    config = write_config(
        tmp_path,
        namespace=namespace,
        kafka=kafka_bootstrap,
        database=database_url,
        http=http,
        smtp=smtp,
        ack_within_s=ACK_WITHIN_S,
        extra={"api": {"enabled": False}},
    )
    made = Processes(config, tmp_path)
    yield made
    made.stop_all()


def _kinds(http: HttpReceiver, path: str) -> list[tuple[str, str]]:
    return [
        (json.loads(r.body)["alarm_id"], json.loads(r.body)["kind"]) for r in http.answered(path)
    ]


async def test_kill_9_in_the_middle_of_an_escalation_the_next_level_still_fires_on_time(
    processes: Processes,
    producer: AIOKafkaProducer,
    namespace: str,
    database_url: str,
    http: HttpReceiver,
) -> None:
    first = processes.start()
    await send(producer, Topics(namespace).alert_events, alert_event("a1"))
    await async_wait_for(lambda: now(http.answered("/ops")), 60, "level 1 told")
    first.kill()  # SIGKILL: no clean shutdown of anything
    first.wait()
    processes.start()

    told = await async_wait_for(lambda: now(http.answered("/maint")), 60, "level 2 told")
    engine = open_database(database_url)
    try:
        opened = (await get_alarm(engine, "a1")).opened_at
    finally:
        await engine.dispose()
    opened = opened if opened.tzinfo else opened.replace(tzinfo=__import__("datetime").UTC)
    deadline = (opened + timedelta(seconds=ACK_WITHIN_S)).timestamp()
    late = told[0].at - deadline
    assert -0.5 <= late <= 5.0, f"level 2 told {late:.1f} s after its deadline"
    assert _kinds(http, "/ops") == [("a1", "raised")]  # not told again by the new process
    assert _kinds(http, "/maint") == [("a1", "escalated")]


async def test_two_processes_tell_everyone_once(
    processes: Processes,
    producer: AIOKafkaProducer,
    namespace: str,
    http: HttpReceiver,
) -> None:
    processes.start()
    processes.start()
    topic = Topics(namespace).alert_events
    for n in range(20):
        await send(producer, topic, alert_event(f"a{n}", machine=f"mill-{n:02d}"))
    await async_wait_for(lambda: now(len(http.answered("/maint")) >= 20), 90, "level 2 for all")
    ops, maint = Counter(_kinds(http, "/ops")), Counter(_kinds(http, "/maint"))
    assert set(ops.values()) == {1}
    assert set(maint.values()) == {1}
    assert len(ops) == len(maint) == 20
