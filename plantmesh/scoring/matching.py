"""The units an alert log is scored in and how they are paired (plantmesh.scoring.score).

Alert episode. One alert_id from its `raised` event to its `cleared` one. Alert events are taken
in `at` order (log order among equal times); a `raised` whose alert_id is already open is the same
episode (a duplicate of at-least-once delivery, or a re-raise without a clear) and counts once;
a `raised` after that id was cleared opens a new episode; a `cleared` with no open episode is
ignored (the log began mid-episode). Several alert_ids of one rule and series are several
episodes, however close together. An episode is dated by its raised `at`.

Event. One injected event: the machine-wide truth lines (signal null) sharing an `event` index,
kind, plant and window are one event; a signal event is one line. A server event (plc_restart, comms_loss, clock_skew) is written as one line per
machine of the server; grouped, one PLC restart is one event covering those machines.

Window. An episode can detect an event when its plant is the event's, its machine one of the
event's machines, its signal the event's signal (events without a signal: any signal) and it was
raised in [start, end + grace] (an open-ended event runs to the last alert event of the log).
An alert about a gateway rather than a machine (asset plant/gateway/gateway/<id>, as alerting's
comms-loss rules name one alert for a whole gateway's silent machines) stands for every machine
of its plant, so it can detect an event without a signal (a PLC restart, a comms loss) there.

Pairing, one to one. First the events that should alert: a maximum bipartite matching (augmenting
paths, Kuhn's algorithm) between them and the episodes in their windows, events taken by start,
each trying its candidate episodes earliest first. So every event gets its earliest episode, unless
that episode is the only one an earlier-matched event could use, in which case it takes the next;
no event holds more than one episode and no episode detects more than one event. Then the harmless
events: every episode left over that lies in a harmless event's window is a page on harmless (one
episode is charged to the first such event only). An episode paired with no event that should
alert is a false alert, wherever it lies.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from plantmesh.contracts import AlertEvent
from plantmesh.contracts.alerts import AlertEventKind
from plantmesh.scoring.truth import TruthRecord, iso_utc


@dataclass
class Episode:
    """One alert_id from raised to cleared."""

    alert: AlertEvent  # its (first) raised event
    cleared: datetime | None = None

    @property
    def raised(self) -> datetime:
        return self.alert.at

    @property
    def series(self) -> str:
        """`plant/machine/signal rule`: what one alarm of an operator's list is."""
        asset = self.alert.asset
        return f"{asset.plant}/{asset.machine}/{self.alert.signal} {self.alert.rule}"


def episodes(alerts: list[AlertEvent]) -> list[Episode]:
    """The alert episodes of a log, by raised time."""
    found: list[Episode] = []
    open_by_id: dict[str, Episode] = {}
    for event in sorted(alerts, key=lambda a: a.at):  # stable: log order among equal times
        current = open_by_id.get(event.alert_id)
        if event.kind == AlertEventKind.RAISED:
            if current is None:
                open_by_id[event.alert_id] = episode = Episode(event)
                found.append(episode)
        elif current is not None:
            current.cleared = event.at
            del open_by_id[event.alert_id]
    found.sort(key=lambda e: e.raised)
    return found


@dataclass
class Event:
    """One injected event, its truth lines grouped (a server event has one per machine)."""

    records: list[TruthRecord]

    @property
    def first(self) -> TruthRecord:
        return self.records[0]

    @property
    def kind(self) -> str:
        return self.first.kind

    @property
    def plant(self) -> str:
        return self.first.plant

    @property
    def machines(self) -> tuple[str, ...]:
        return tuple(r.machine for r in self.records)

    @property
    def signal(self) -> str | None:
        return self.first.signal

    @property
    def start(self) -> datetime:
        return self.first.start

    @property
    def end(self) -> datetime | None:
        return self.first.end

    @property
    def should_alert(self) -> bool:
        return self.first.should_alert

    @property
    def where(self) -> str:
        machines = ",".join(self.machines)
        return f"{self.plant}/{machines}/{self.signal or '*'}"

    def on_series(self, episode: Episode) -> bool:
        """The episode is on a series the event concerns (at any time)."""
        alert = episode.alert
        if alert.asset.plant != self.plant:
            return False
        if is_gateway(alert):
            return self.signal is None
        return alert.asset.machine in self.machines and (
            self.signal is None or alert.signal == self.signal
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.first.event,
            "kind": self.kind,
            "plant": self.plant,
            "machines": list(self.machines),
            "signal": self.signal,
            "start": iso_utc(self.start),
            "end": iso_utc(self.end) if self.end else None,
            "severity": self.first.severity,
            "should_alert": self.should_alert,
        }


def group_events(truth: Sequence[TruthRecord]) -> list[Event]:
    """Truth lines of one event as one Event: the machine-wide lines (signal null) of one index,
    kind, plant and window; a signal event has one line anyway."""
    groups: dict[tuple[object, ...], Event] = {}
    for record in truth:
        machine = record.machine if record.signal is not None else None
        key = (
            record.event,
            record.kind,
            record.plant,
            machine,
            record.signal,
            record.start,
            record.end,
        )
        if key in groups:
            groups[key].records.append(record)
        else:
            groups[key] = Event([record])
    return sorted(groups.values(), key=lambda e: (e.start, e.first.event))


@dataclass
class Pairing:
    """Who detected what: indexes into the events and episodes lists given to `pair`."""

    detected_by: dict[int, int] = field(default_factory=dict)  # event that should alert -> episode
    paged: dict[int, list[int]] = field(default_factory=dict)  # harmless event -> its episodes

    def true_episodes(self) -> set[int]:
        return set(self.detected_by.values())


GATEWAY_AREA = "gateway"


def is_gateway(alert: AlertEvent) -> bool:
    """An alert about a gateway (plant/gateway/gateway/<id>), not about one machine."""
    return alert.asset.area == GATEWAY_AREA and alert.asset.line == GATEWAY_AREA


class _Candidates:
    """Episodes indexed by plant and machine, by raised time, to find those in a window fast."""

    def __init__(self, found: list[Episode], grace: timedelta) -> None:
        self.found = found
        self.grace = grace
        self.last = max(
            (e.cleared or e.raised for e in found), default=datetime.max.replace(tzinfo=UTC)
        )
        self.by_machine: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.gateways: dict[str, list[int]] = defaultdict(list)
        for i, episode in enumerate(found):  # already by raised time
            asset = episode.alert.asset
            if is_gateway(episode.alert):
                self.gateways[asset.plant].append(i)
            else:
                self.by_machine[asset.plant, asset.machine].append(i)

    def of(self, event: Event) -> list[int]:
        """Episodes in the event's window, earliest first."""
        end = (event.end if event.end is not None else self.last) + self.grace
        hits: list[int] = []
        groups = [self.by_machine.get((event.plant, machine), []) for machine in event.machines]
        if event.signal is None:
            groups.append(self.gateways.get(event.plant, []))
        for indexes in groups:
            times = [self.found[i].raised for i in indexes]
            low = bisect.bisect_left(times, event.start)
            high = bisect.bisect_right(times, end)
            hits.extend(i for i in indexes[low:high] if event.on_series(self.found[i]))
        return sorted(hits)  # indexes follow raised time


def pair(events: list[Event], found: list[Episode], grace: timedelta) -> Pairing:
    """One-to-one pairing of events and episodes (see the module docstring)."""
    candidates = _Candidates(found, grace)
    wanted = {i: candidates.of(e) for i, e in enumerate(events) if e.should_alert}
    owner: dict[int, int] = {}  # episode -> event

    def augment(event: int, seen: set[int]) -> bool:
        # Depth is bounded by the events whose windows share episodes (overlapping events on
        # one series), a handful in any scenario.
        for episode in wanted[event]:
            if episode in seen:
                continue
            seen.add(episode)
            if episode not in owner or augment(owner[episode], seen):
                owner[episode] = event
                return True
        return False

    for index in wanted:  # events are sorted by start
        augment(index, set())
    result = Pairing(detected_by={event: episode for episode, event in owner.items()})
    charged = set(owner)
    for i, event in enumerate(events):
        if event.should_alert:
            continue
        hits = [j for j in candidates.of(event) if j not in charged]
        if hits:
            result.paged[i] = hits
            charged.update(hits)
    return result
