"""The demo's people: each plant answers its alarms with a habit of its own, through the API,
with a token scoped to that plant, so the scorecards at the end have something to compare.

- plant-a is slow: it acknowledges only after its level 2 has been told.
- plant-b is fast and disciplined: maintenance acknowledges a few seconds after the first
  notification.
- plant-c shelves too much: the operator hides each alarm for an hour instead of answering.
Network incidents are headquarters' (nobody here answers them).
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from plantmesh.demo.alarm_story import Api, ApiError

FAST_PLANT = "plant-b"
SLOW_PLANT = "plant-a"
SHELVING_PLANT = "plant-c"
SHELVE_FOR_S = 3600.0


@dataclass(frozen=True)
class Habit:
    plant: str
    who: str
    """Who answers, as the demo prints it (and the token's name)."""
    role: str
    action: str
    """acknowledge or shelve"""
    delay_s: float
    """After the alarm's first notification: how long this plant takes."""

    def body(self) -> dict[str, object]:
        if self.action == "shelve":
            return {"reason": "machine still running, look at it after the shift",
                    "duration_s": SHELVE_FOR_S}  # fmt: skip
        return {"comment": "on my way"}


def habits(ack_within_s: float) -> dict[str, Habit]:
    """Per plant. The slow plant answers between its level 2 and level 3 deadlines."""
    return {
        FAST_PLANT: Habit(FAST_PLANT, "plant-b maintenance", "maintenance", "acknowledge", 3.0),
        SLOW_PLANT: Habit(
            SLOW_PLANT, "plant-a operator", "operator", "acknowledge", ack_within_s + 12.0
        ),
        SHELVING_PLANT: Habit(SHELVING_PLANT, "plant-c operator", "operator", "shelve", 5.0),
    }


@dataclass(frozen=True)
class Answer:
    alarm_id: str
    habit: Habit
    at: float
    """monotonic"""


class Responders:
    """Answers each plant's alarms after its habit's delay, on a thread of its own (a person
    reading the message, not the notification handler)."""

    def __init__(
        self,
        api: Api,
        tokens: dict[str, str],
        plan: dict[str, Habit],
        say: Callable[[str], None],
    ) -> None:
        self.api = api
        self.tokens = tokens
        self.plan = plan
        self._say = say
        self._due: queue.Queue[tuple[float, str, Habit] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self.told: dict[str, tuple[str, float]] = {}
        """alarm id -> its plant, when its first notification arrived (monotonic)."""
        self.answers: list[Answer] = []
        self.refused: list[str] = []
        self._worker = threading.Thread(target=self._run, name="demo-responders", daemon=True)

    def __enter__(self) -> Responders:
        self._worker.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._due.put(None)
        self._worker.join(timeout=15)

    def first_notice(self, plant: str, alarm_id: str, at: float) -> None:
        """The first notification of an alarm: its plant's habit decides what happens."""
        habit = self.plan.get(plant)
        with self._lock:
            if habit is None or alarm_id in self._seen:
                return  # told again (raised again before anyone answered): one answer
            self._seen.add(alarm_id)
            self.told[alarm_id] = (plant, at)
        self._due.put((at + habit.delay_s, alarm_id, habit))

    def answered(self, plant: str) -> set[str]:
        with self._lock:
            return {a.alarm_id for a in self.answers if a.habit.plant == plant}

    def last_told(self, plant: str) -> float:
        """When the last of `plant`'s alarms was first told (monotonic; 0 for none)."""
        with self._lock:
            return max((at for p, at in self.told.values() if p == plant), default=0.0)

    def _run(self) -> None:
        pending: list[tuple[float, str, Habit]] = []  # a heap by due time
        while True:
            wait = None if not pending else max(0.0, pending[0][0] - time.monotonic())
            try:
                item = self._due.get(timeout=wait)
                if item is None:
                    return
                heapq.heappush(pending, item)
            except queue.Empty:
                pass
            while pending and pending[0][0] <= time.monotonic():
                _, alarm_id, habit = heapq.heappop(pending)
                self._answer(alarm_id, habit)

    def _answer(self, alarm_id: str, habit: Habit) -> None:
        path = f"/api/v1/alarms/{alarm_id}/{habit.action}"
        try:
            self.api.call(self.tokens[habit.plant], "POST", path, habit.body())
        except ApiError as exc:
            # A person can be too late (the alarm already back to normal): said, not fatal.
            self._say(f"{habit.who} could not {habit.action}: {exc}")
            with self._lock:
                self.refused.append(alarm_id)
            return
        with self._lock:
            self.answers.append(Answer(alarm_id, habit, time.monotonic()))
        what = "acknowledged" if habit.action == "acknowledge" else "shelved for an hour"
        self._say(f"{habit.who} {what} through the API: POST {path}")
