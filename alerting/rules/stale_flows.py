"""Data-flow episodes of the stale rule: the silences of several machines sent by one gateway
that start together are one comms-loss alert keyed by the gateway (signal `data-flow`), not one
per machine. That is what a protocol source going away looks like while its gateway lives (an
OPC UA server down, a Modbus device silent): no death message, every machine of the source quiet
at once. StaleRule decides which silences fold (see its docstring); this module keeps the
episodes, which machines are in them and which are back, and says so in evidence.

An episode clears when every silence that joined it has ended (after the rule's off_delay_s,
through Episodes); a silence joining while it clears keeps it raised, as the same alert."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from alerting.evidence import iso, num
from alerting.rules.common import Parameters
from alerting.rules.episodes import Episodes, Subject, Transition
from alerting.rules.stale_gateways import FLOW_SIGNAL, Emit, gateway_subject
from plantmesh.contracts import AlertEvent

LISTED = 20
"""At most this many silent keys are named in evidence; the count says how many in all."""


@dataclass(frozen=True, slots=True)
class Silence:
    """A key (machine or series) silent for for_s: what the evidence names."""

    key: str
    """The machine's asset key (scope machine) or the series key."""
    last_seen: datetime
    due: datetime
    """When it had been silent for for_s."""


@dataclass
class Flow:
    subject: Subject
    plant: str
    gateway_id: str
    silent: dict[str, Silence] = field(default_factory=dict)
    """The members still silent."""
    members: dict[str, Silence] = field(default_factory=dict)
    """Every silence that joined the episode."""


class DataFlows:
    """The data-flow episodes of one stale rule, keyed by plant/gateway_id."""

    def __init__(self, rule: str, for_s: float, off_delay_s: float, scope: str) -> None:
        self.episodes = Episodes(rule, off_delay_s=off_delay_s)
        self.for_s = for_s
        self.scope = scope
        self._flows: dict[str, Flow] = {}

    def active(self, gateway: str) -> bool:
        return self.episodes.active(gateway)

    def join(
        self,
        emit: Emit,
        gateway: str,
        silences: Iterable[Silence],
        at: datetime,
    ) -> list[AlertEvent]:
        """`silences` of the keys `gateway` (plant/gateway_id) sent join its episode, which
        raises at `at` if it was not open (the raise names them all)."""
        flow = self._flows.get(gateway)
        if flow is None or not self.active(gateway):
            plant, _, gateway_id = gateway.partition("/")
            subject = gateway_subject(plant, gateway_id, FLOW_SIGNAL)
            flow = self._flows[gateway] = Flow(subject, plant, gateway_id)
        for silence in silences:
            flow.silent[silence.key] = flow.members[silence.key] = silence
        found = self.episodes.observe(gateway, at, True, flow.subject)
        return [] if found is None else [self._event(emit, found, flow)]

    def back(self, emit: Emit, gateway: str, key: str, ts: datetime) -> list[AlertEvent]:
        """Data of a member is back at `ts`: the last one back ends the silence of the flow,
        no earlier than it was raised."""
        flow = self._flows.get(gateway)
        episode = self.episodes.get(gateway)
        if flow is None or episode is None or flow.silent.pop(key, None) is None or flow.silent:
            return []
        at = max(ts, episode.raised_at or ts)
        found = self.episodes.observe(gateway, at, False, flow.subject)
        return [] if found is None else [self._event(emit, found, flow)]

    def tick(self, emit: Emit, watermark: datetime) -> list[AlertEvent]:
        """The clears whose off-delay elapsed by `watermark`."""
        events = []
        for found in self.episodes.tick(watermark):
            asset = found.episode.subject.asset
            flow = self._flows[f"{asset.plant}/{asset.machine}"]
            events.append(self._event(emit, found, flow))
        return events

    def _event(self, emit: Emit, found: Transition, flow: Flow) -> AlertEvent:
        silences = flow.silent if found.raised else flow.members
        ordered = sorted(silences.values(), key=lambda s: (s.last_seen, s.key))
        first, last = ordered[0].last_seen, ordered[-1].last_seen
        what = "machine(s)" if self.scope == "machine" else "series"
        listed = ", ".join(s.key for s in ordered[:LISTED])
        if len(ordered) > LISTED:
            listed += f", ... (+{len(ordered) - LISTED})"
        params: Parameters = {
            "plant": flow.plant,
            "gateway_id": flow.gateway_id,
            "scope": self.scope,
            "for_s": self.for_s,
            "silent_count": len(ordered),
            "silent": listed,
            "last_seen": "; ".join(f"{s.key}={iso(s.last_seen)}" for s in ordered[:LISTED]),
            "first_last_seen_ts": iso(first),
            "last_last_seen_ts": iso(last),
        }
        name = f"gateway {flow.gateway_id} of {flow.plant}"
        condition = (
            f"no reading for >= {num(self.for_s)} s from 2 or more machines sent by one gateway, "
            f"their silences reaching it within {num(self.for_s)} s of each other"
        )
        if found.raised:
            summary = f"no data from {len(ordered)} {what} sent by {name}: {listed}"
            return emit(found, summary, condition, params)
        resumed = found.episode.stopped_ts or found.at
        silence_s = (resumed - first).total_seconds()
        params |= {
            "silence_s": silence_s,
            "resumed_ts": iso(resumed),
            "raised_at": iso(found.episode.raised_at or found.at),
            "off_delay_s": self.episodes.off_delay.total_seconds(),
        }
        # Cleared: the episode is closed, and so is its record.
        del self._flows[f"{flow.plant}/{flow.gateway_id}"]
        summary = (
            f"data from all {len(ordered)} {what} sent by {name} back at {iso(resumed)} "
            f"after {num(silence_s)} s"
        )
        return emit(found, summary, f"every one of them has data again; {condition}", params)
