"""The alarm part of the demo: who is told, and what the API says at the end.

Every contact of the demo's escalation policy (deploy/demo/escalation.yaml) is a webhook to the
demo's receiver, which prints each notification as it arrives; each alarm's first one goes to
its plant's responders (plantmesh/demo/responders.py), who answer through the API. At the end
every alarm's timeline is read back from the API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plantmesh.demo.hooks import Received

NETWORK = "network"
"""The plant the alarm service keeps network incidents under."""

FirstNotice = Callable[[str, str, float], None]
"""(plant, alarm id, when) of an alarm's first notification."""


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
    """Prints each notification as it arrives and hands each alarm's first one to its plant's
    responders (plantmesh/demo/responders.py)."""

    def __init__(
        self, api: Api, reader: str, started: float, first_notice: FirstNotice | None = None
    ) -> None:
        self.api = api
        self._reader = reader
        self._started = started
        self.first_notice = first_notice
        self._lock = threading.Lock()
        self.problems: list[str] = []

    def say(self, what: str) -> None:
        print(f"  {time.monotonic() - self._started:5.0f} s: {what}", flush=True)

    def on_notification(self, received: Received) -> None:
        note = received.payload
        level = f"level {note.get('level')}" if note.get("level") else "all"
        signed = "signed" if received.signed else "SIGNATURE WRONG"
        what = f"{note.get('title')} on {note.get('asset')}"
        if note.get("plant") == NETWORK:  # a network incident: its explanation says it all
            what = f"network incident: {note.get('summary')}"
        self.say(f"notified {received.contact} ({level}, {signed}): {note.get('kind')} {what}")
        if not received.signed:
            with self._lock:
                self.problems.append(f"a notification to {received.contact} was not signed right")
        if note.get("kind") == "raised" and self.first_notice is not None:
            self.first_notice(str(note.get("plant")), str(note.get("alarm_id")), received.at)

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
