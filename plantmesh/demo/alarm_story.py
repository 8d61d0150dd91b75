"""The alarm part of the demo: who is told, who answers, what escalates.

Every contact of the demo's escalation policy (deploy/demo/escalation.yaml) is a webhook to the
demo's receiver. Maintenance of one plant (plant-b) answers: a few seconds after the first
notification of one of its alarms it acknowledges through the API, with a token scoped to its
plant. Nobody answers anywhere else, so those alarms climb to the next level when their time to
acknowledge runs out. At the end every alarm's timeline is read back from the API.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plantmesh.demo.hooks import Received

ACKNOWLEDGING_PLANT = "plant-b"
NETWORK = "network"
"""The plant the alarm service keeps network incidents under."""
ACK_DELAY_S = 3.0
"""How long plant-b's maintenance takes to answer (a person, not a script)."""


class ApiError(Exception):
    pass


@dataclass(frozen=True)
class Api:
    url: str

    def call(self, token: str, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise ApiError(f"{method} {path}: HTTP {exc.code} {exc.read()[:200]!r}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ApiError(f"{method} {path}: {exc}") from exc


class AlarmStory:
    """Prints each notification as it arrives and acknowledges plant-b's alarms through the API."""

    def __init__(self, api: Api, reader: str, acknowledger: str, started: float) -> None:
        self.api = api
        self._reader = reader
        self._acknowledger = acknowledger
        self._started = started
        self._due: queue.Queue[tuple[float, str] | None] = queue.Queue()
        self._lock = threading.Lock()
        self.acknowledged: dict[str, float] = {}
        """alarm id -> when the demo's acknowledgement was accepted (monotonic)."""
        self.told: dict[str, float] = {}
        """plant-b's alarm id -> when its first notification arrived (monotonic)."""
        self.problems: list[str] = []
        self._worker = threading.Thread(target=self._acknowledge, name="demo-acks", daemon=True)

    def __enter__(self) -> AlarmStory:
        self._worker.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._due.put(None)
        self._worker.join(timeout=15)

    def _say(self, what: str) -> None:
        print(f"  {time.monotonic() - self._started:5.0f} s: {what}", flush=True)

    def on_notification(self, received: Received) -> None:
        note = received.payload
        level = f"level {note.get('level')}" if note.get("level") else "all"
        signed = "signed" if received.signed else "SIGNATURE WRONG"
        what = f"{note.get('title')} on {note.get('asset')}"
        if note.get("plant") == NETWORK:  # a network incident: its explanation says it all
            what = f"network incident: {note.get('summary')}"
        self._say(f"notified {received.contact} ({level}, {signed}): {note.get('kind')} {what}")
        if not received.signed:
            with self._lock:
                self.problems.append(f"a notification to {received.contact} was not signed right")
        alarm_id = str(note.get("alarm_id"))
        if note.get("plant") == ACKNOWLEDGING_PLANT and note.get("kind") == "raised":
            with self._lock:
                if alarm_id in self.told:
                    return  # told again (raised again before anyone answered): one answer
                self.told[alarm_id] = received.at
            self._due.put((received.at + ACK_DELAY_S, alarm_id))

    def _acknowledge(self) -> None:
        while (item := self._due.get()) is not None:
            due, alarm_id = item
            time.sleep(max(0.0, due - time.monotonic()))  # the person reading the message
            path = f"/api/v1/alarms/{alarm_id}/acknowledge"
            try:
                self.api.call(self._acknowledger, "POST", path, {"comment": "on my way"})
            except ApiError as exc:
                self._say(f"acknowledging through the API failed: {exc}")
                continue
            with self._lock:
                self.acknowledged[alarm_id] = time.monotonic()
            self._say(
                f"{ACKNOWLEDGING_PLANT} maintenance acknowledged through the API: POST {path}"
            )

    def escalation_would_be_due(self, ack_within_s: float) -> float:
        """When the last of plant-b's alarms would have reached level 2 without its
        acknowledgement (monotonic); the demo keeps the alarm service running until then."""
        with self._lock:
            return max(self.told.values(), default=0.0) + ack_within_s

    def alarms(self) -> list[dict[str, Any]]:
        listed = self.api.call(self._reader, "GET", "/api/v1/alarms?limit=1000")
        return [self.api.call(self._reader, "GET", f"/api/v1/alarms/{a['id']}") for a in listed]

    def incidents(self) -> list[dict[str, Any]]:
        listed = self.api.call(self._reader, "GET", "/api/v1/incidents?limit=1000")
        return [self.api.call(self._reader, "GET", f"/api/v1/incidents/{i['id']}") for i in listed]


def make_token(config: Path, env: dict[str, str], name: str, role: str, plant: str) -> str:
    """An API token from `plantmesh alerting token create` (stored hashed, printed once)."""
    made = subprocess.run(
        [sys.executable, "-m", "alerting", "token", "create", "--config", str(config),
         "--name", name, "--role", role, "--plant", plant],
        capture_output=True, text=True, env={**os.environ, **env}, check=False, timeout=120,
    )  # fmt: skip
    if made.returncode != 0 or not made.stdout.strip():
        raise ApiError(f"token create {name}: {made.stderr.strip() or made.stdout.strip()}")
    return made.stdout.split()[0]


def first_ack_within_s(escalation: Path) -> float:
    """The first level's time to acknowledge in the demo's policy: how long after plant-b's
    alarm was raised its level 2 would have been told, had nobody answered."""
    import yaml  # only the demo reads the policy this way

    policy = yaml.safe_load(escalation.read_text())["policies"][0]
    return float(policy["levels"][0]["ack_within_s"])
